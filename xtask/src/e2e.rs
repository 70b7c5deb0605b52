//! `cargo xtask e2e`: the chart on a real Kubernetes. The cluster in `KUBECONFIG` when one is
//! given (its node must already have the image, named by `PIXELMILL_E2E_IMAGE`), else the local
//! one-node cluster of `../shared/k8s/cluster.sh` (`PIXELMILL_K8S_KIT`), started here and
//! stopped at the end whatever happened. Then:
//!
//! 1. **image**: `image smoke` builds and checks the image and keeps it as an archive, which
//!    the node imports (`cluster.sh load-image`);
//! 2. **services**: PostgreSQL and Garage (`.ci/services.sh`), reached by the pods on the
//!    node's address through forwarders this process runs (the services listen on loopback);
//! 3. **install**: `helm install --wait` with `helm/pixelmill/ci/e2e-values.yaml` (a
//!    Deployment, with the probes, security context, migration hook, Secret, NetworkPolicy and
//!    PDB of staging), then `helm test`;
//! 4. **api**: through the Service's ClusterIP (kube-proxy, no port-forward): readiness,
//!    upload, render, cache hit, delete, and `/metrics` at the port the ServiceMonitor names;
//! 5. **upgrade under load**: `pixelmill-load` at a fixed rate through the ClusterIP while
//!    `helm upgrade --wait` replaces every pod: no request may fail;
//! 6. **bad release**: an upgrade whose pods never become Ready (a flag the service refuses)
//!    fails its `--wait` and is rolled back (`helm rollback` to the revision before), under
//!    load, with no failed request.
//!
//!    Both upgrades are released by the driver and the `release::ship` that
//!    `cargo xtask deploy local` uses (helm_release.rs): its release, smoke test and rollback
//!    are what is proven here;
//! 7. **rollback**: `helm rollback` to the revision before;
//! 8. **uninstall**: nothing of the release is left in the namespace.
//!
//! Each step prints its time; the summary table ends the run.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

use crate::cmd::Cmd;
use crate::context::Context;
use crate::flags::Args;
use crate::helm_release::{HelmRelease, SmokeTarget};
use crate::report::{StepError, Steps};
use crate::{image_smoke, release};

const NAMESPACE: &str = "pixelmill-e2e";
const RELEASE: &str = "pixelmill";
const SECRET: &str = "pixelmill-e2e";
const VALUES: &str = "helm/pixelmill/ci/e2e-values.yaml";
/// The name the image carries on the node (the values file's repository and tag).
const IMAGE: &str = "localhost/pixelmill:e2e";
/// The rate of the load during an upgrade, and how long it runs.
const LOAD_RATE: &str = "20";

pub(crate) struct E2e {
    /// The test of the test: pods without their preStop pause and without the service's drain,
    /// and the upgrade under load must then lose requests.
    pub(crate) broken_drain: bool,
}

impl E2e {
    pub(crate) fn parse(mut args: Args) -> Result<E2e, String> {
        let broken_drain = args.flag("--broken-drain");
        args.finish()?;
        Ok(E2e { broken_drain })
    }

    pub(crate) fn run(self, ctx: Context) -> Result<(), String> {
        // The cluster first: every later command runs with its KUBECONFIG.
        ctx.say("==> cluster");
        let began = Instant::now();
        let cluster = Cluster::start(&ctx).map_err(|e| format!("e2e: step `cluster` failed: {e}"))?;
        let took = began.elapsed();
        ctx.say(&format!("<== cluster: ok ({:.1} s)", took.as_secs_f64()));
        let ctx = &ctx.with_var("KUBECONFIG", &cluster.kubeconfig);
        let mut steps = Steps::new(&ctx.output);
        steps.ran_before("cluster", true, took);
        let result = run_steps(ctx, &mut steps, &cluster, self.broken_drain);
        let services = steps.run("stop services", || ctx.run(&Cmd::new("bash").args([".ci/services.sh", "stop"])));
        let stopped = if cluster.started {
            steps.run("cluster down", || {
                let kit = cluster.kit.display().to_string();
                ctx.run(&Cmd::new(&kit).arg("down"))?;
                // Nothing of it may be left: status fails and says so when nothing runs.
                match ctx.output(&Cmd::new(&kit).arg("status"), "") {
                    Err(e) if e.contains("not running") => Ok(()),
                    Err(e) => Err(format!("after `down`, `status` said: {e}")),
                    Ok(status) => Err(format!("after `down`, the cluster still runs: {status}")),
                }
            })
        } else {
            Ok(())
        };
        steps.finish(result.and(services).and(stopped)).map_err(|e| format!("e2e: {e}"))
    }
}

/// The cluster the run uses.
struct Cluster {
    kubeconfig: String,
    kit: PathBuf,
    /// Started by this run (and so stopped by it).
    started: bool,
}

/// The local cluster kit: `PIXELMILL_K8S_KIT`, else `../shared/k8s/cluster.sh` beside the
/// repository.
pub(crate) fn kit(ctx: &Context) -> PathBuf {
    ctx.var("PIXELMILL_K8S_KIT").map(PathBuf::from).unwrap_or_else(|| ctx.root.join("../shared/k8s/cluster.sh"))
}

/// Whether there is a cluster to run against: `KUBECONFIG`, or the local kit.
pub(crate) fn has_cluster(ctx: &Context) -> bool {
    ctx.var("KUBECONFIG").is_some_and(|k| !k.is_empty()) || kit(ctx).is_file()
}

impl Cluster {
    fn start(ctx: &Context) -> Result<Cluster, String> {
        let kit = kit(ctx);
        if let Some(kubeconfig) = ctx.var("KUBECONFIG").filter(|k| !k.is_empty()) {
            ctx.say(&format!("using the cluster of KUBECONFIG={kubeconfig}"));
            return Ok(Cluster { kubeconfig, kit, started: false });
        }
        if !kit.is_file() {
            return Err(format!(
                "no cluster: KUBECONFIG is not set and there is no local cluster kit at {} (set PIXELMILL_K8S_KIT)",
                kit.display()
            ));
        }
        let exports = ctx.output(&Cmd::new(&kit.display().to_string()).args(["up", "--with-kubelet"]), "")?;
        let kubeconfig = exports
            .lines()
            .find_map(|line| line.strip_prefix("export KUBECONFIG="))
            .ok_or_else(|| format!("{} up printed no KUBECONFIG", kit.display()))?
            .to_owned();
        Ok(Cluster { kubeconfig, kit, started: true })
    }
}

/// helm on PATH, else the one `.ci/helm.sh` installs.
pub(crate) fn helm(ctx: &Context) -> String {
    if ctx.find("helm").is_some() {
        return "helm".to_owned();
    }
    let home = ctx.var("HOME").unwrap_or_default();
    format!("{home}/.cache/pixelmill-tools/bin/helm")
}

fn kubectl(args: &[&str]) -> Cmd {
    Cmd::new("kubectl").args(["-n", NAMESPACE]).args(args.iter().copied())
}

fn run_steps(ctx: &Context, steps: &mut Steps<'_>, cluster: &Cluster, broken_drain: bool) -> Result<(), StepError> {
    let helm = helm(ctx);
    steps.run("image", || {
        let archive = ctx.scratch()?.join("image.tar");
        let archive_path = archive.display().to_string();
        // The smoke test's image, checked, kept as an archive under the name the values use.
        let mut smoke = Context::from_process()
            .with_var("PIXELMILL_SMOKE_ARCHIVE", &archive_path)
            .with_var("PIXELMILL_SMOKE_ARCHIVE_NAME", IMAGE);
        if let Some(build) = ctx.var("PIXELMILL_SMOKE_BUILD") {
            smoke = smoke.with_var("PIXELMILL_SMOKE_BUILD", &build);
        }
        let mut image_steps = Steps::new(&smoke.output);
        let port = free_port()?;
        let built = image_smoke::run(&smoke, &mut image_steps, port);
        image_steps.finish(built).map_err(|e| e.to_string())?;
        match ctx.var("PIXELMILL_E2E_LOAD").filter(|_| !cluster.started) {
            // A cluster of one's own: its way of giving the node an image (`kind load image-archive`).
            Some(load) => ctx.run(&Cmd::new("sh").args(["-c", &format!("{load} {archive_path}")])),
            None if cluster.started => {
                ctx.run(&Cmd::new(&cluster.kit.display().to_string()).args(["load-image", &archive_path]))
            }
            None => Err(format!(
                "the node of this cluster needs {IMAGE}: set PIXELMILL_E2E_LOAD to the command that loads an image archive into it (kind: `kind load image-archive`)"
            )),
        }
    })?;
    let node = steps.run("services", || {
        let exports = ctx.output(&Cmd::new("bash").args([".ci/services.sh", "start"]), "")?;
        let node = ctx.output(
            &Cmd::new("kubectl").args([
                "get",
                "nodes",
                "-o",
                "jsonpath={.items[0].status.addresses[?(@.type==\"InternalIP\")].address}",
            ]),
            "192.0.2.2",
        )?;
        for port in [5432, 3900] {
            forward(&node, port)?;
        }
        let var = |name: &str| {
            exports
                .lines()
                .find_map(|line| line.strip_prefix(&format!("export {name}=")))
                .map(str::to_owned)
                .ok_or_else(|| format!(".ci/services.sh printed no {name}"))
        };
        let database = var("PIXELMILL_TEST_DATABASE_URL")?.replace("127.0.0.1", &node);
        let _ = ctx.run(&Cmd::new("kubectl").args(["delete", "namespace", NAMESPACE, "--ignore-not-found", "--wait"]));
        ctx.run(&Cmd::new("kubectl").args(["create", "namespace", NAMESPACE]))?;
        let secret = kubectl(&["create", "secret", "generic", SECRET])
            .arg(format!("--from-literal=DATABASE_URL={database}"))
            .arg(format!("--from-literal=AWS_ACCESS_KEY_ID={}", var("AWS_ACCESS_KEY_ID")?))
            .arg(format!("--from-literal=AWS_SECRET_ACCESS_KEY={}", var("AWS_SECRET_ACCESS_KEY")?));
        ctx.run(&secret)?;
        Ok(node)
    })?;
    // The node's address where the values file has its placeholder.
    let node_values = steps.run("values", || {
        let text = crate::context::read_file(ctx, VALUES)?.replace("192.0.2.2", &node);
        // The test of the test: no preStop pause (the chart leaves the hook out at 0), and no
        // drain in the service (it stops at SIGTERM). Without the pause alone nothing is lost
        // on this cluster: the service's close phase outlasts kube-proxy's update.
        let text = if broken_drain {
            text.replace("config:\n", "config:\n  shutdownDrainSeconds: 0\n")
                + "\nlifecycle:\n  preStopSleepSeconds: 0\n"
        } else {
            text
        };
        let path = ctx.scratch()?.join("e2e-node-values.yaml");
        std::fs::write(&path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        Ok(path.display().to_string())
    })?;
    let upgrade = |extra: &[String], wait: &str| {
        let mut cmd = Cmd::new(&helm).args(["upgrade", "--install", RELEASE, "helm/pixelmill", "-n", NAMESPACE]);
        cmd = cmd.args(["-f", &node_values, "--wait", "--timeout", wait]);
        for set in extra {
            cmd = cmd.args(["--set-string", set]);
        }
        ctx.run(&cmd)
    };
    steps.run("install", || {
        upgrade(&[], "3m")?;
        ctx.run(&Cmd::new(&helm).args(["test", RELEASE, "-n", NAMESPACE, "--timeout", "2m"]))
    })?;
    let (base, key) = steps.run("api", || {
        let ip = ctx.output(&kubectl(&["get", "service", RELEASE, "-o", "jsonpath={.spec.clusterIP}"]), "<ip>")?;
        let base = format!("http://{ip}");
        let key = ctx.output(
            &kubectl(&["exec", &format!("deploy/{RELEASE}"), "--", "pixelmill", "keys", "create", "--name", "e2e"]),
            "<key>",
        )?;
        let key = key.lines().last().unwrap_or_default().trim().to_owned();
        crate::smoke::run_with_key(ctx, &base, Some(&key))?;
        let metrics = ctx.output(&Cmd::new("curl").args(["--silent", "--fail", &format!("{base}/metrics")]), "")?;
        if !metrics.contains("pixelmill_http_requests_total") {
            return Err("/metrics has no pixelmill_http_requests_total".to_owned());
        }
        Ok((base, key))
    })?;
    let under_load = |name: &str, seconds: u64, change: &dyn Fn() -> Result<(), String>| -> Result<(), String> {
        let report = ctx.scratch()?.join(format!("{name}.json"));
        let load = Load::start(ctx, &base, &key, &report, seconds)?;
        let changed = change();
        let (failed, requests, p99) = load.finish(ctx, &report)?;
        ctx.say(&format!("{name}: {failed} failed requests of {requests}, p99 {p99:.1} ms"));
        changed?;
        if failed > 0 {
            return Err(format!("{failed} requests failed while the pods were replaced"));
        }
        Ok(())
    };
    // The upgrades go through the driver `deploy local` releases with, and its rollback.
    let ship = |sets: &[&str], timeout_seconds: u64| -> Result<(), StepError> {
        let sets = sets.iter().map(|set| (*set).to_owned()).collect();
        let smoke = SmokeTarget::Url(base.clone());
        let mut driver = HelmRelease::new(
            &helm,
            RELEASE,
            NAMESPACE,
            RELEASE,
            vec![node_values.clone()],
            sets,
            timeout_seconds,
            smoke,
            None,
        );
        driver.api_key = Some(key.clone());
        release::ship(ctx, &mut Steps::new(&ctx.output), &mut driver)
    };
    if broken_drain {
        steps.run("broken drain", || {
            let report = ctx.scratch()?.join("broken-drain.json");
            let load = Load::start(ctx, &base, &key, &report, 60)?;
            let shipped = ship(&["podAnnotations.e2e-revision=2"], 180);
            let (failed, requests, p99) = load.finish(ctx, &report)?;
            ctx.say(&format!("broken drain: {failed} failed requests of {requests}, p99 {p99:.1} ms"));
            if failed == 0 {
                return Err("the upgrade lost no request without its drain: the check proves nothing".to_owned());
            }
            let also = match shipped {
                Ok(()) => String::new(),
                Err(e) => format!("; the release failed too (step `{}`) and was handled: {}", e.step, e.message),
            };
            ctx.say(&format!("without the drain the upgrade loses requests, as it must{also}"));
            Ok(())
        })?;
        steps.skip("bad release", "--broken-drain");
        steps.skip("rollback", "--broken-drain");
        return steps.run("uninstall", || uninstall(ctx, &helm));
    }
    steps.run("upgrade under load", || {
        under_load("upgrade", 60, &|| ship(&["podAnnotations.e2e-revision=2"], 180).map_err(|e| e.message))
    })?;
    steps.run("bad release", || {
        // The load covers the 60 s wait and the rollback after it, with room to spare.
        under_load("bad-release", 85, &|| {
            // A flag the service refuses: its pods exit at start, while the migration hook
            // (its own arguments) passes, so the Deployment itself is what never gets Ready.
            match ship(&["args={serve,--no-such-flag}"], 60) {
                Ok(()) => Err("an upgrade whose pods refuse their settings became Ready".to_owned()),
                Err(failed) if failed.step == "release" && failed.message.contains("\nrolled back: ") => {
                    ctx.say("the upgrade did not become Ready and was rolled back");
                    Ok(())
                }
                Err(failed) => Err(format!("step `{}` of the bad release: {}", failed.step, failed.message)),
            }
        })
    })?;
    steps.run("rollback", || {
        ctx.run(&Cmd::new(&helm).args(["rollback", RELEASE, "1", "-n", NAMESPACE, "--wait", "--timeout", "3m"]))?;
        crate::smoke::run_with_key(ctx, &base, Some(&key))
    })?;
    steps.run("uninstall", || uninstall(ctx, &helm))
}

/// `helm uninstall`, the pods gone, nothing of the release left; then the namespace deleted.
fn uninstall(ctx: &Context, helm: &str) -> Result<(), String> {
    ctx.run(&Cmd::new(helm).args(["uninstall", RELEASE, "-n", NAMESPACE, "--wait", "--timeout", "2m"]))?;
    // The pods end after their preStop pause and drain.
    let selector = format!("app.kubernetes.io/instance={RELEASE}");
    ctx.run(&kubectl(&["wait", "--for=delete", "pod", "-l", &selector, "--timeout=120s"]))?;
    let left = ctx.output(
        &kubectl(&["get", "all,configmap,secret,networkpolicy,poddisruptionbudget,serviceaccount", "-o", "name"]),
        "",
    )?;
    let ours: Vec<&str> = left
        .lines()
        .filter(|name| {
            !name.ends_with(&format!("/{SECRET}")) && !name.contains("kube-root-ca") && !name.contains("service-ca")
        })
        .filter(|name| *name != "serviceaccount/default")
        .collect();
    if !ours.is_empty() {
        return Err(format!("left in {NAMESPACE} after uninstall: {}", ours.join(", ")));
    }
    ctx.run(&Cmd::new("kubectl").args(["delete", "namespace", NAMESPACE, "--wait"]))
}

/// `pixelmill-load` at a fixed rate against the release, in the background.
struct Load {
    child: Option<std::process::Child>,
}

impl Load {
    /// Starts `seconds` of load; the change under it must end before.
    fn start(ctx: &Context, base: &str, key: &str, report: &Path, seconds: u64) -> Result<Load, String> {
        // The build the image was made from: the workspace's (debug) one in CI, as `image
        // smoke` there, else the release one.
        let profile =
            if ctx.var("PIXELMILL_SMOKE_BUILD").as_deref() == Some("workspace") { "debug" } else { "release" };
        let binary = crate::cmd::target_dir().join(profile).join("pixelmill-load");
        let log = report.with_extension("log");
        let duration = format!("{seconds}s");
        let cmd = Cmd::new(&binary.display().to_string())
            .args(["--target-base", base, "--scenario", "mixed", "--rate", LOAD_RATE, "--duration", &duration])
            .args(["--quiet", "--json", &report.display().to_string()])
            .env("PIXELMILL_LOAD_API_KEY", key);
        let child = ctx.spawn(&cmd, &log)?;
        // Load before the change starts.
        thread::sleep(Duration::from_secs(5));
        Ok(Load { child })
    }

    /// Waits for the load to end and reads its failed requests, all its requests and p99.
    fn finish(mut self, ctx: &Context, report: &Path) -> Result<(u64, u64, f64), String> {
        let Some(mut child) = self.child.take() else { return Ok((0, 0, 0.0)) };
        ctx.say("(waiting for the load to end)");
        let deadline = Instant::now() + Duration::from_secs(180);
        while child.try_wait().map_err(|e| e.to_string())?.is_none() {
            if Instant::now() > deadline {
                let _ = child.kill();
                return Err("pixelmill-load did not stop".to_owned());
            }
            thread::sleep(Duration::from_millis(100));
        }
        let text = std::fs::read_to_string(report).map_err(|e| format!("no load report {}: {e}", report.display()))?;
        let json: serde_json::Value = serde_json::from_str(&text).map_err(|e| format!("load report: {e}"))?;
        let failed = json["errors"]["total"].as_u64().unwrap_or(u64::MAX);
        let requests = json["requests"].as_u64().unwrap_or(0);
        let p99 = json["latency_ms"]["p99"].as_f64().unwrap_or(f64::NAN);
        Ok((failed, requests, p99))
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
        }
    }
}

fn free_port() -> Result<u16, String> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .map_err(|e| format!("no free port: {e}"))
}

/// Forwards `node:port` to `127.0.0.1:port` for the rest of the process: the services listen on
/// loopback, which the pods cannot reach.
fn forward(node: &str, port: u16) -> Result<(), String> {
    let listener =
        TcpListener::bind((node, port)).map_err(|e| format!("cannot listen on {node}:{port} to forward it: {e}"))?;
    thread::spawn(move || {
        for incoming in listener.incoming() {
            let Ok(client) = incoming else { continue };
            thread::spawn(move || {
                let Ok(server) = TcpStream::connect(SocketAddr::from(([127, 0, 0, 1], port))) else { return };
                let (Ok(client_read), Ok(server_write)) = (client.try_clone(), server.try_clone()) else { return };
                let up = thread::spawn(move || copy(client_read, server_write));
                copy(server, client);
                let _ = up.join();
            });
        }
    });
    Ok(())
}

fn copy(mut from: TcpStream, mut to: TcpStream) {
    let mut buffer = [0u8; 64 * 1024];
    loop {
        match from.read(&mut buffer) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if to.write_all(&buffer[..n]).is_err() {
                    break;
                }
            }
        }
    }
    let _ = to.shutdown(Shutdown::Write);
}
