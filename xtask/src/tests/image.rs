//! `image smoke` against the fakes (buildah, cargo, ldd, objcopy, kill) and the test server,
//! and the Dockerfile against the chart that runs the image.

use super::*;
use crate::flags::Args;
use crate::image::Image;
use crate::image_smoke::{self, GROUP, PASSWD, RuntimeStage};
use crate::report::Steps;

const KEY: &str = "pmk_image_smoke_0123";
const STORAGE: &str = "--storage-driver vfs --root <scratch>/storage/root --runroot <scratch>/storage/runroot";

fn dockerfile() -> String {
    std::fs::read_to_string(crate::cmd::project_root().join("Dockerfile")).unwrap()
}

fn stage() -> RuntimeStage {
    RuntimeStage::parse(&dockerfile()).unwrap()
}

/// What `buildah inspect --type image` says of an image built from `stage`, run as `user`.
fn inspect(stage: &RuntimeStage, user: &str) -> String {
    let mut env = vec!["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".to_owned()];
    env.extend(stage.env.iter().map(|(key, value)| format!("{key}={value}")));
    let ports: serde_json::Map<String, serde_json::Value> =
        stage.exposed.iter().map(|port| (port.clone(), serde_json::json!({}))).collect();
    let config = serde_json::json!({
        "User": user, "Env": env, "ExposedPorts": ports, "Entrypoint": stage.entrypoint, "Cmd": stage.cmd,
    });
    serde_json::json!({ "Type": "buildah 0.0.1", "OCIv1": { "config": config } }).to_string()
}

/// The repository's Dockerfile, fakes of the smoke's system tools, and a buildah that answers
/// as the image would: its config, `pixelmill-load --version`, a key from `keys create`.
fn smoke_fixture(name: &str) -> Fixture {
    let text = dockerfile();
    let fixture = Fixture::with(name, |repo| std::fs::write(repo.join("Dockerfile"), &text).unwrap());
    for program in ["ldd", "objcopy", "kill"] {
        let path = fixture.fakes.join(program);
        std::fs::write(&path, FAKE).unwrap();
        make_executable(&path);
    }
    // The libraries of a made-up system: the smoke copies the files ldd names.
    let system = fixture.dir.path().join("system");
    std::fs::create_dir_all(&system).unwrap();
    std::fs::write(system.join("libc.so.6"), "libc").unwrap();
    std::fs::write(system.join("ld-linux-x86-64.so.2"), "loader").unwrap();
    let system = system.display();
    fixture.file(
        "ldd",
        &format!(
            "\tlinux-vdso.so.1 (0x00007ffd0a1f2000)\n\tlibc.so.6 => {system}/libc.so.6 (0x00007f8434d3e000)\n\
             \t{system}/ld-linux-x86-64.so.2 (0x00007f84378fd000)\n"
        ),
    );
    fixture.file("inspect", &inspect(&stage(), &stage().user));
    fixture.rule("ldd *", 0, "@ldd");
    fixture.rule("buildah * inspect *", 0, "@inspect");
    fixture.rule("buildah * run * --version", 0, "pixelmill-load 0.1.0");
    fixture.rule("buildah * run * keys create *", 0, KEY);
    // The server's process group is empty once it stopped.
    fixture.rule("kill -0 *", 1, "kill: (-4242): No such process");
    fixture.vars.borrow_mut().insert("CARGO_TARGET_DIR".into(), "/cache/target".into());
    fixture
}

fn port_of(fixture: &Fixture) -> u16 {
    fixture.server.url.rsplit(':').next().unwrap().parse().unwrap()
}

/// The fakes' calls but `kill`: the fake server may or may not have exited before it is stopped.
fn calls_but_kill(fixture: &Fixture) -> Vec<String> {
    fixture.calls().into_iter().filter(|call| !call.starts_with("kill ")).collect()
}

#[test]
fn image_smoke_is_a_subcommand_of_image() {
    assert!(matches!(Image::parse(Args::new("image", &["smoke".to_owned()])).unwrap(), Image::Smoke));
    let extra = Image::parse(Args::new("image", &["smoke".to_owned(), "staging".to_owned()]));
    assert_eq!(extra.err().unwrap(), "`image`: unexpected argument `staging`");
}

#[test]
fn image_smoke_in_ci_takes_the_workspace_build_the_tests_made() {
    let fixture = smoke_fixture("image-smoke-ci");
    let ctx = fixture.context().with_var("PIXELMILL_SMOKE_BUILD", "workspace");
    let port = port_of(&fixture);
    let mut steps = Steps::new(&ctx.output);
    image_smoke::run(&ctx, &mut steps, port).unwrap();
    let calls = calls_but_kill(&fixture);
    assert_eq!(calls[1], "cargo build --locked --workspace --all-targets");
    assert!(calls.iter().all(|call| !call.contains("--release")), "{calls:?}");
    assert_eq!(
        calls[2],
        "objcopy --strip-debug /cache/target/debug/pixelmill <scratch>/image/builder/out/usr/local/bin/pixelmill"
    );
}

#[test]
fn image_smoke_builds_the_runtime_stage_runs_it_and_removes_it() {
    let fixture = smoke_fixture("image-smoke");
    let ctx = fixture.context();
    let port = port_of(&fixture);
    let mut steps = Steps::new(&ctx.output);
    image_smoke::run(&ctx, &mut steps, port).unwrap();

    let buildah = |rest: &str| format!("buildah {STORAGE} {rest}");
    let run = "run --isolation chroot";
    assert_eq!(
        calls_but_kill(&fixture),
        [
            "buildah --version".to_owned(),
            "cargo build --release --locked -p pixelmill -p pixelmill-load".to_owned(),
            "objcopy --strip-debug /cache/target/release/pixelmill <scratch>/image/builder/out/usr/local/bin/pixelmill"
                .to_owned(),
            "ldd /cache/target/release/pixelmill".to_owned(),
            "objcopy --strip-debug /cache/target/release/pixelmill-load \
             <scratch>/image/builder/out/usr/local/bin/pixelmill-load"
                .to_owned(),
            "ldd /cache/target/release/pixelmill-load".to_owned(),
            buildah(
                "bud --isolation chroot --file <scratch>/image/Containerfile --tag pixelmill-smoke <scratch>/image"
            ),
            buildah("from --name pixelmill-smoke pixelmill-smoke"),
            buildah("inspect --type image pixelmill-smoke"),
            buildah(&format!("{run} pixelmill-smoke -- /usr/local/bin/pixelmill-load --version")),
            buildah(&format!("{run} pixelmill-smoke -- /usr/local/bin/pixelmill keys create --name image-smoke")),
            buildah(&format!(
                "{run} --env PIXELMILL_LISTEN=0.0.0.0:{port} pixelmill-smoke -- /usr/local/bin/pixelmill serve"
            )),
            buildah("rm --all"),
            buildah("rmi --all --force"),
        ]
    );
    assert_eq!(
        fixture.server.lines(),
        [
            "GET /healthz",
            "POST /v1/render?w=100&fmt=jpeg",
            "GET /readyz",
            "POST /v1/images",
            "GET /v1/images/img_7Qx2/render?w=64&fmt=webp",
            "DELETE /v1/images/img_7Qx2",
        ]
    );
    let bearer = format!("Bearer {KEY}");
    for request in fixture.server.requests().iter().filter(|request| request.method != "GET") {
        assert_eq!(request.authorization.as_deref(), Some(bearer.as_str()), "{}", request.target);
    }

    // The build context: the runtime stage on the assembled base, what the builder stage makes.
    let dir = ctx.scratch().unwrap().join("image");
    let containerfile = std::fs::read_to_string(dir.join("Containerfile")).unwrap();
    assert!(containerfile.contains("\nFROM scratch\nCOPY base/ /\nLABEL "), "{containerfile}");
    for line in [
        "COPY builder/out/usr/local/bin/ /usr/local/bin/",
        "COPY --chown=10001:10001 builder/out/var/lib/pixelmill /var/lib/pixelmill",
        "USER 10001:10001",
        r#"ENTRYPOINT ["/usr/local/bin/pixelmill"]"#,
    ] {
        assert!(containerfile.lines().any(|l| l == line), "no `{line}` in\n{containerfile}");
    }
    let system = fixture.dir.path().join("system");
    let copied = |name: &str| {
        std::fs::read_to_string(dir.join("base").join(system.strip_prefix("/").unwrap()).join(name)).unwrap()
    };
    assert_eq!((copied("libc.so.6").as_str(), copied("ld-linux-x86-64.so.2").as_str()), ("libc", "loader"));
    let passwd = std::fs::read_to_string(dir.join("builder/out/etc/passwd")).unwrap();
    assert_eq!(passwd, format!("{}\n{}\n", PASSWD[0], PASSWD[1]));
    assert!(dir.join("builder/out/var/lib/pixelmill").is_dir());
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(dir.join("base/tmp")).unwrap().permissions().mode() & 0o7777, 0o1777);
    assert!(!ctx.scratch().unwrap().join("storage").exists(), "the storage outlived the run");
}

#[test]
fn image_smoke_stops_at_a_config_other_than_the_dockerfile_and_still_cleans_up() {
    let fixture = smoke_fixture("image-smoke-config");
    fixture.file("inspect", &inspect(&stage(), "0:0"));
    let ctx = fixture.context();
    let mut steps = Steps::new(&ctx.output);
    let error = image_smoke::run(&ctx, &mut steps, port_of(&fixture)).unwrap_err();
    assert_eq!(error.step, "image");
    assert!(error.message.contains("user is `0:0`, the Dockerfile says `10001:10001`"), "{}", error.message);
    let calls = calls_but_kill(&fixture);
    assert!(!calls.iter().any(|call| call.contains(" run ")), "{calls:?}");
    assert_eq!(
        calls[calls.len() - 2..],
        [format!("buildah {STORAGE} rm --all"), format!("buildah {STORAGE} rmi --all --force")]
    );
    assert!(fixture.server.lines().is_empty());
}

#[test]
fn image_smoke_fails_when_the_server_never_answers_and_still_cleans_up() {
    let fixture = smoke_fixture("image-smoke-down");
    let ctx = fixture.context();
    let nothing_listens = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut steps = Steps::new(&ctx.output);
    let error = image_smoke::run(&ctx, &mut steps, nothing_listens).unwrap_err();
    assert_eq!(error.step, "run");
    assert!(error.message.contains("/healthz"), "{}", error.message);
    assert!(error.message.contains("the server's log"), "{}", error.message);
    let calls = calls_but_kill(&fixture);
    assert_eq!(
        calls[calls.len() - 2..],
        [format!("buildah {STORAGE} rm --all"), format!("buildah {STORAGE} rmi --all --force")]
    );
}

#[test]
fn image_smoke_fails_when_processes_of_the_server_outlive_it() {
    let fixture = smoke_fixture("image-smoke-orphans");
    fixture.rule("kill -0 *", 0, "");
    let ctx = fixture.context();
    let mut steps = Steps::new(&ctx.output);
    let error = image_smoke::run(&ctx, &mut steps, port_of(&fixture)).unwrap_err();
    assert_eq!(error.step, "run");
    assert!(error.message.starts_with("processes of the server outlived it; they were killed"), "{}", error.message);
    let kills: Vec<String> = fixture.calls().into_iter().filter(|call| call.starts_with("kill -0 ")).collect();
    assert_eq!(kills.len(), 1, "{kills:?}");
    assert!(fixture.calls().iter().any(|call| call.starts_with("kill -KILL -- -")));
}

/// `key: value` of every line of `text` whose key is `key` (the chart's values are plain YAML).
fn values_of(text: &str, key: &str) -> Vec<String> {
    text.lines()
        .filter_map(|line| line.trim().strip_prefix(&format!("{key}:")).map(|value| value.trim().to_owned()))
        .collect()
}

#[test]
fn the_dockerfile_runs_what_the_chart_expects() {
    let root = crate::cmd::project_root();
    let values = std::fs::read_to_string(root.join("helm/pixelmill/values.yaml")).unwrap();
    let stage = stage();
    let (users, groups) = (values_of(&values, "runAsUser"), values_of(&values, "runAsGroup"));
    assert!(!users.is_empty() && users.iter().chain(&groups).all(|id| *id == users[0]), "{users:?} {groups:?}");
    assert_eq!(stage.user, format!("{}:{}", users[0], groups[0]), "USER must be the chart's runAsUser:runAsGroup");
    let port = &values_of(&values, "targetPort")[0];
    assert!(stage.exposed.contains(&format!("{port}/tcp")), "EXPOSE {port}: {:?}", stage.exposed);
    let env = |name: &str| stage.env.iter().find(|(key, _)| key == name).map(|(_, value)| value.as_str());
    assert_eq!(env("PIXELMILL_LISTEN"), Some(format!("0.0.0.0:{port}").as_str()));
    // Off loopback the service refuses to start with auth off.
    assert_eq!(env("PIXELMILL_AUTH"), Some("true"));
    // The chart gives the server only `args` (default `serve`), the migration Job `migrate`.
    assert_eq!(stage.entrypoint, ["/usr/local/bin/pixelmill"]);
    assert!(values.contains("\nargs:\n  - serve\n"), "the chart's default args changed");
    assert_eq!(stage.cmd, ["serve"]);
    // The load-test and analysis Jobs run /usr/local/bin/pixelmill-load from the same image.
    let job = std::fs::read_to_string(root.join("helm/pixelmill/templates/job-loadtest.yaml")).unwrap();
    assert!(job.contains("- /usr/local/bin/pixelmill-load"), "the chart moved pixelmill-load");
    let text = dockerfile();
    assert!(text.contains("/out/usr/local/bin/pixelmill-load"), "the builder stage does not install pixelmill-load");
    assert!(stage.instructions.contains(&"COPY builder/out/usr/local/bin/ /usr/local/bin/".to_owned()));
}

#[test]
fn the_dockerfile_pins_its_bases_and_writes_the_users_the_smoke_writes() {
    let text = dockerfile();
    let mut stages = Vec::new();
    for line in text.lines().filter(|line| line.starts_with("FROM ")) {
        let words: Vec<&str> = line.split_whitespace().collect();
        let image = words[1];
        if !stages.contains(&image) {
            let digest = image.split_once("@sha256:").map(|(_, digest)| digest).unwrap_or("");
            assert!(digest.len() == 64 && digest.chars().all(|c| c.is_ascii_hexdigit()), "unpinned: {line}");
        }
        if let [.., keyword, name] = words[..]
            && keyword.eq_ignore_ascii_case("AS")
        {
            stages.push(name);
        }
    }
    assert!(stages.contains(&"builder"), "the runtime stage copies from a stage named builder: {stages:?}");
    for line in PASSWD.iter().chain(&GROUP) {
        assert!(text.contains(&format!("'{line}'")), "the builder stage does not write `{line}`");
    }
    assert!(text.contains("cargo build --release --locked -p pixelmill -p pixelmill-load"));
    let ignored = std::fs::read_to_string(crate::cmd::project_root().join(".dockerignore")).unwrap();
    for path in ["target/", ".git/", ".env"] {
        assert!(ignored.lines().any(|line| line == path), ".dockerignore does not leave out {path}");
    }
}
