//! CPU time of the processes under test, read from `/proc`: the started
//! dispatchd nodes and PostgreSQL (every process named `postgres`, plus
//! what its postmaster has reaped from exited backends), so a run can say
//! how many µs of CPU each delivered event cost, and where.

/// Clock ticks per second of `/proc/*/stat` (`USER_HZ`, 100 on Linux).
const TICKS_PER_SEC: f64 = 100.0;

/// CPU seconds used so far.
#[derive(Clone, Copy, Default)]
pub struct Sample {
    pub dispatchd: f64,
    pub postgres: f64,
}

impl Sample {
    /// Reads the nodes' and PostgreSQL's CPU time now.
    pub fn take(nodes: &[u32]) -> Sample {
        let dispatchd = nodes.iter().filter_map(|p| ticks(*p)).sum::<u64>();
        let postgres = postgres_pids().filter_map(ticks).sum::<u64>();
        Sample {
            dispatchd: dispatchd as f64 / TICKS_PER_SEC,
            postgres: postgres as f64 / TICKS_PER_SEC,
        }
    }

    /// The CPU used between `self` and `later`.
    pub fn until(self, later: Sample) -> Sample {
        Sample {
            dispatchd: later.dispatchd - self.dispatchd,
            postgres: later.postgres - self.postgres,
        }
    }
}

/// utime + stime + cutime + cstime of one process, in ticks.
fn ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces): state is
    // field 3, utime..cstime are 14..17.
    let rest = stat.rsplit_once(')')?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    f.get(11..15)?.iter().map(|v| v.parse::<u64>().ok()).sum()
}

fn postgres_pids() -> impl Iterator<Item = u32> {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .is_ok_and(|c| c.trim_end() == "postgres")
        })
}
