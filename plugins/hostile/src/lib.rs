//! A misbehaving plugin, for dispatchd's containment tests. Its `mode`
//! setting picks the misbehaviour; the event's payload field `"mode"`, when
//! present, wins, so one loaded plugin can misbehave per event:
//!
//! - `loop`: spins forever (fuel or the deadline must stop it)
//! - `memory`: allocates without end (the memory cap must stop it)
//! - `recursion`: recurses without end with big frames, which overflows
//!   the plugin's own stack in linear memory (an out-of-bounds trap)
//! - `deep-stack`: recurses without end with small frames, kept in wasm
//!   locals (the host's wasm stack cap must stop it)
//! - `unreachable`: panics, which is `unreachable` in wasm
//! - `sleep`: sleeps for an hour in a WASI call (which must trap: host
//!   code cannot be interrupted)
//! - `big-output`: returns a 100 MB payload
//! - `fail`: returns an error
//! - `drop`: drops the delivery
//! - `remember`: counts its calls in a static and its heap, and delivers
//!   with `x-hostile-calls` (a fresh instance must always say 1: nothing of
//!   an earlier call survives in memory)
//! - anything else: delivers the request unchanged, with header
//!   `x-hostile: passed`

use dispatch_plugin::{Decision, Event, Request, Transform, export_transformer, setting};

pub struct Hostile;

impl Transform for Hostile {
    fn transform(event: Event, mut request: Request) -> Result<Decision, String> {
        let from_payload = serde_json::from_str::<serde_json::Value>(&event.payload)
            .ok()
            .and_then(|v| v.get("mode").and_then(|m| m.as_str()).map(String::from));
        let mode = from_payload.or_else(|| setting("mode")).unwrap_or_default();
        match mode.as_str() {
            "loop" => {
                let mut n: u64 = 0;
                loop {
                    n = std::hint::black_box(n.wrapping_add(1));
                }
            }
            "memory" => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(vec![1u8; 1 << 20]);
                    std::hint::black_box(&hoard);
                }
            }
            "recursion" => Ok(Decision::Drop(format!("{}", deep(std::hint::black_box(1))))),
            "deep-stack" => Ok(Decision::Drop(format!(
                "{}",
                native_deep(event.id.len() as u32)
            ))),
            "unreachable" => panic!("hostile plugin panics on purpose"),
            "sleep" => {
                std::thread::sleep(std::time::Duration::from_secs(3600));
                Ok(Decision::Drop("woke up".into()))
            }
            "big-output" => {
                request.payload = "x".repeat(100 << 20);
                Ok(Decision::Deliver(request))
            }
            "fail" => Err("hostile plugin fails on purpose".into()),
            "drop" => Ok(Decision::Drop("hostile plugin drops on purpose".into())),
            "remember" => {
                let calls = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
                // And on the heap, which a reused slot would also carry over.
                let mut seen = SEEN.lock().unwrap_or_else(|e| e.into_inner());
                seen.push(calls);
                request.set_header("x-hostile-calls", format!("{calls}/{}", seen.len()));
                Ok(Decision::Deliver(request))
            }
            _ => {
                request.set_header("x-hostile", "passed");
                Ok(Decision::Deliver(request))
            }
        }
    }
}

static CALLS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
static SEEN: std::sync::Mutex<Vec<u32>> = std::sync::Mutex::new(Vec::new());

#[inline(never)]
#[allow(unconditional_recursion)]
fn deep(n: u64) -> u64 {
    let pad = std::hint::black_box([n; 64]);
    deep(std::hint::black_box(n + 1)) + pad[3]
}

/// Recursion the compiler cannot turn into a loop, with nothing in linear
/// memory: only the wasm stack grows.
#[inline(never)]
fn native_deep(n: u32) -> u32 {
    if n == u32::MAX {
        return 1;
    }
    native_deep(n + 1).wrapping_mul(n | 1).rotate_left(5)
}

export_transformer!(Hostile);
