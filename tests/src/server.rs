//! A `pixelmill serve` under test: the built binary on port 0 with a backend's settings, its
//! log captured, driven over HTTP.

// Test helpers panic on failure by design.
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;

use crate::binaries::binary;
use crate::services::{Database, service_env};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Embedded,
    PostgresAndS3,
}

pub struct Server {
    pub child: Child,
    pub base: String,
    pub env: Vec<(String, String)>,
    pub logs: Arc<Mutex<Vec<String>>>,
    pub data_dir: tempfile::TempDir,
    pub database: Option<Database>,
    pub client: reqwest::Client,
}

/// The binary, without this process's `PIXELMILL_*` variables (the tests' own, which the
/// service would refuse as unknown settings, and any config file).
pub fn pixelmill() -> Command {
    let mut command = Command::new(binary("pixelmill"));
    for (name, _) in std::env::vars().filter(|(name, _)| name.starts_with("PIXELMILL_")) {
        command.env_remove(name);
    }
    command
}

/// Starts the server with the backend's settings plus `extra`, and waits for its `listening` log.
pub async fn spawn_app(backend: Backend, extra: &[(&str, &str)]) -> Server {
    let data_dir = tempfile::tempdir().unwrap();
    let mut env: Vec<(String, String)> = vec![
        ("PIXELMILL_LISTEN".into(), "127.0.0.1:0".into()),
        ("PIXELMILL_DATA_DIR".into(), data_dir.path().display().to_string()),
        ("PIXELMILL_LOG_FORMAT".into(), "json".into()),
        ("PIXELMILL_SHUTDOWN_DRAIN_SECONDS".into(), "20".into()),
    ];
    let mut database = None;
    if backend == Backend::PostgresAndS3 {
        let db = Database::create().await;
        env.push(("DATABASE_URL".into(), db.url()));
        let bucket = service_env("PIXELMILL_TEST_S3_URL");
        env.push(("PIXELMILL_STORAGE".into(), format!("{bucket}/http-{}", uuid::Uuid::new_v4().simple())));
        env.push(("PIXELMILL_S3_ENDPOINT".into(), service_env("PIXELMILL_TEST_S3_ENDPOINT")));
        database = Some(db);
    }
    env.extend(extra.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));

    let mut child = pixelmill()
        .arg("serve")
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let logs = Arc::new(Mutex::new(Vec::new()));
    let (address_tx, address_rx) = std::sync::mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    let sink = Arc::clone(&logs);
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Ok(entry) = serde_json::from_str::<Value>(&line)
                && entry["message"] == "listening"
            {
                let _ = address_tx.send(entry["address"].as_str().unwrap_or_default().to_owned());
            }
            sink.lock().unwrap().push(line);
        }
    });
    let address = address_rx
        .recv_timeout(Duration::from_secs(60))
        .unwrap_or_else(|_| panic!("the server did not start; its log: {:?}", logs.lock().unwrap()));
    Server {
        child,
        base: format!("http://{address}"),
        env,
        logs,
        data_dir,
        database,
        client: reqwest::Client::builder().timeout(Duration::from_secs(120)).build().unwrap(),
    }
}

/// A server whose test panicked is killed all the same.
impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client.get(self.url(path)).send().await.unwrap()
    }

    pub async fn upload(&self, bytes: Vec<u8>) -> reqwest::Response {
        self.client.post(self.url("/v1/images")).header("content-type", "image/jpeg").body(bytes).send().await.unwrap()
    }

    pub async fn upload_id(&self, bytes: Vec<u8>) -> String {
        let response = self.upload(bytes).await;
        assert!(response.status().is_success(), "{}", response.status());
        response.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned()
    }

    /// Runs another `pixelmill` command with this server's configuration.
    pub fn command(&self, args: &[&str]) -> std::process::Output {
        pixelmill().args(args).envs(self.env.iter().map(|(k, v)| (k, v))).output().unwrap()
    }

    pub async fn metric(&self, series: &str) -> f64 {
        let text = self.get("/metrics").await.text().await.unwrap();
        text.lines().find_map(|line| line.strip_prefix(series).and_then(|rest| rest.trim().parse().ok())).unwrap_or(0.0)
    }

    /// Polls `/metrics` until `series` is at least `value`, failing the test after `within` or
    /// as soon as `gave_up()` says the awaited state can no longer come.
    pub async fn wait_metric(&self, series: &str, value: f64, within: Duration, gave_up: impl Fn() -> bool) {
        let started = std::time::Instant::now();
        while self.metric(series).await < value {
            assert!(!gave_up(), "{series} never reached {value}: what it waited for ended first");
            assert!(started.elapsed() < within, "{series} did not reach {value} within {within:?}");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// The server's peak resident memory so far (VmHWM), in bytes.
    pub fn peak_rss(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        let kib: u64 = status
            .lines()
            .find_map(|line| line.strip_prefix("VmHWM:"))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap();
        kib * 1024
    }

    pub fn terminate(&self) {
        let status = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status().unwrap();
        assert!(status.success());
    }

    pub async fn stop(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(database) = self.database.take() {
            database.drop_now().await;
        }
    }
}

/// Asserts a problem+json answer with this status and `code`, and returns its body.
pub async fn problem(response: reqwest::Response, status: StatusCode, code: &str) -> Value {
    assert_eq!(response.status(), status, "expected {code}");
    assert_eq!(response.headers()["content-type"], "application/problem+json", "{code}");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["code"], code);
    assert_eq!(body["status"], status.as_u16());
    body
}
