//! Every curl example from the two seed projects' READMEs, run verbatim
//! through the real `curl` against the real `dispatchd --dev`. Only the
//! port and the example destination URLs are replaced (by a local
//! receiver's); `-s -w` is appended to read the status code.

use std::time::Duration;

use dispatch_tests::{Backend, Binary, Receiver, TestDb, both_backends};
use serde_json::Value;

// From the Dispatch seed README, as written there.
const CREATE_SUBSCRIPTION: &str = r#"curl -X POST http://localhost:8080/subscriptions \
  -H "Content-Type: application/json" \
  -d '{
    "id": "sub_123",
    "url": "https://example.com/webhook",
    "event_types": ["order.*"],
    "secret": "my-secret-key"
  }'"#;
const CREATE_EVENT: &str = r#"curl -X POST http://localhost:8080/events \
  -H "Content-Type: application/json" \
  -d '{
    "id": "evt_123",
    "type": "order.created",
    "source": "billing-service",
    "data": {"order_id": "12345", "amount": 99.90}
  }'"#;
const GET_EVENT: &str = "curl http://localhost:8080/events/evt_123";
const GET_ATTEMPTS: &str = "curl http://localhost:8080/events/evt_123/attempts";
const LIST_SUBSCRIPTIONS: &str = "curl http://localhost:8080/subscriptions";
const DELETE_SUBSCRIPTION: &str = "curl -X DELETE http://localhost:8080/subscriptions/sub_123";

// From the DispatchGO seed README, as written there (its URL is mangled by
// Markdown; it is the one string replaced by the receiver's URL).
const CREATE_TASK: &str = r#"curl -X POST http://localhost:8080/tasks \
-H "Content-Type: application/json" \
-d '{
    "url": "[https://webhook.site/YOUR-UNIQUE-ID](https://webhook.site/YOUR-UNIQUE-ID)",
    "method": "POST",
    "event": "payment.success",
    "secret": "whsec_test_secret_123",
    "headers": {
    "X-Api-Key": "crm_key_88492"
               },
    "data": {
      "transaction_id": "txn_8923749823"
      }
}' "#;

struct Seeds {
    port: u16,
    receiver: Receiver,
}

impl Seeds {
    /// Runs one example through bash and curl: (status code, JSON body).
    async fn run(&self, example: &str) -> (u16, Value) {
        let command = example
            .replace("localhost:8080", &format!("localhost:{}", self.port))
            .replace(
                "https://example.com/webhook",
                &self.receiver.url("/webhook"),
            )
            .replace(
                "[https://webhook.site/YOUR-UNIQUE-ID](https://webhook.site/YOUR-UNIQUE-ID)",
                &self.receiver.url("/task"),
            );
        let out = tokio::process::Command::new("bash")
            .args(["-c", &format!("{command} -s -w '\\n%{{http_code}}'")])
            .output()
            .await
            .expect("bash and curl are installed");
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let (body, code) = stdout.rsplit_once('\n').expect("status line");
        let code: u16 = code.trim().parse().expect("status code");
        let json = if body.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(body).unwrap_or_else(|_| panic!("not JSON: {body}"))
        };
        (code, json)
    }
}

async fn seed_examples_work_verbatim(backend: Backend) {
    let db = TestDb::new(backend).await;
    let mut node = Binary::start_dev(&db, &[]).await;
    let seeds = Seeds {
        port: node.port,
        receiver: Receiver::start().await,
    };

    let (code, sub) = seeds.run(CREATE_SUBSCRIPTION).await;
    assert_eq!(code, 201, "{sub}");
    assert_eq!(sub["id"], "sub_123");
    assert_eq!(sub["event_types"], serde_json::json!(["order.*"]));
    assert_eq!(sub["secret"], "my-secret-key", "shown once, on create");

    let (code, ev) = seeds.run(CREATE_EVENT).await;
    assert_eq!(code, 202, "{ev}");
    assert_eq!(ev["id"], "evt_123");
    assert_eq!(ev["status"], "queued");
    assert!(ev["created_at"].is_string());

    let got = seeds.receiver.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(got[0].path, "/webhook");
    assert_eq!(got[0].header("x-dispatch-event-id"), "evt_123");
    assert_eq!(got[0].header("x-dispatch-event-type"), "order.created");
    assert!(got[0].header("x-dispatch-signature").starts_with("sha256="));
    assert!(!got[0].header("x-dispatch-timestamp").is_empty());
    assert_eq!(got[0].json()["data"]["order_id"], "12345");

    let delivered = dispatch_tests::eventually(Duration::from_secs(10), || async {
        seeds.run(GET_EVENT).await.1["status"] == "delivered"
    })
    .await;
    assert!(delivered);
    let (code, ev) = seeds.run(GET_EVENT).await;
    assert_eq!(code, 200);
    assert_eq!(ev["id"], "evt_123");
    assert_eq!(ev["type"], "order.created");
    assert_eq!(ev["source"], "billing-service");
    assert_eq!(ev["data"]["amount"], 99.90);
    assert_eq!(ev["deliveries"][0]["subscription_id"], "sub_123");
    assert_eq!(ev["deliveries"][0]["state"], "delivered");

    let (code, attempts) = seeds.run(GET_ATTEMPTS).await;
    assert_eq!(code, 200);
    assert_eq!(attempts["data"][0]["attempt"], 1);
    assert_eq!(attempts["data"][0]["status_code"], 200);

    let (code, list) = seeds.run(LIST_SUBSCRIPTIONS).await;
    assert_eq!(code, 200);
    assert_eq!(list["data"][0]["id"], "sub_123");
    assert_eq!(list["data"][0]["secret"], "********", "masked afterwards");

    let (code, body) = seeds.run(DELETE_SUBSCRIPTION).await;
    assert_eq!(code, 204, "{body}");
    let (_, list) = seeds.run(LIST_SUBSCRIPTIONS).await;
    assert_eq!(list["data"], serde_json::json!([]));

    let (code, task) = seeds.run(CREATE_TASK).await;
    assert_eq!(code, 202, "{task}");
    assert_eq!(task["status"], "queued");
    let task_id = task["task_id"].as_str().expect("task_id").to_string();
    let got = seeds.receiver.wait_for(2, Duration::from_secs(10)).await;
    let t = got
        .iter()
        .find(|r| r.path == "/task")
        .expect("task delivered");
    assert_eq!(t.header("x-api-key"), "crm_key_88492");
    assert_eq!(
        t.json(),
        serde_json::json!({"transaction_id": "txn_8923749823"})
    );
    let key = dispatchd::sign::secret_key("whsec_test_secret_123");
    assert_eq!(
        t.header("x-dispatch-signature"),
        format!("sha256={}", dispatchd::sign::hex_hmac(&key, &t.body))
    );
    let done = dispatch_tests::eventually(Duration::from_secs(10), || async {
        seeds
            .run(&format!("curl http://localhost:8080/tasks/{task_id}"))
            .await
            .1["status"]
            == "completed"
    })
    .await;
    assert!(done, "GET /tasks/{{id}} reports completed");

    node.terminate();
    assert_eq!(node.wait_exit(Duration::from_secs(15)).await, Some(0));
    db.drop_db().await;
}

both_backends!(seed_examples_work_verbatim);
