//! `cargo xtask image smoke`: builds a runnable image of this checkout without a Docker engine
//! and without pulling anything, runs it, and checks that it serves.
//!
//! The smoke image replays the Dockerfile's *runtime stage*, its instructions in order (COPY,
//! ENV, USER, EXPOSE, ENTRYPOINT, CMD, LABEL), on a *base* assembled here in place of distroless:
//! the shared libraries `ldd` lists for the binaries, the dynamic loader, the CA certificates,
//! `/tmp` and `/var/lib`. What the *builder stage* leaves under `/out` is made here the same
//! way, from `cargo build --release --locked` of this checkout: the binaries stripped of debug
//! sections by `objcopy`, `/etc/passwd` and `/etc/group`, the empty data directory. The
//! runtime stage's `COPY --from=builder /out/...` lines take them from `builder/out/...` of the
//! build context. buildah builds the image (`bud --isolation chroot`, vfs storage private to
//! this run) and runs it (`run --isolation chroot`, which applies the image's user and
//! environment):
//!
//! 1. the image's config is what the runtime stage declares (user, environment, port,
//!    entrypoint, command);
//! 2. `pixelmill-load --version` runs;
//! 3. `pixelmill keys create` makes an API key, as the image's user, in the image's data
//!    directory;
//! 4. the entrypoint with its command (`pixelmill serve`) starts with the image's environment;
//!    only the port of `PIXELMILL_LISTEN` changes, to a free one, because chroot isolation
//!    shares the host's network;
//! 5. `GET /healthz`, a stateless JPEG render (`POST /v1/render`), and the release smoke test
//!    (smoke.rs: readiness, upload, WebP render, delete) with that key all pass;
//! 6. SIGTERM stops the server and everything it started.
//!
//! The container, the image and the storage are removed whatever happened.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::{Duration, Instant};

use crate::cmd::{self, Cmd};
use crate::context::{self, Context};
use crate::report::{StepError, Steps};
use crate::{preflight, smoke, system};

/// The stage of the Dockerfile whose `/out` the runtime stage copies from.
const BUILDER_STAGE: &str = "builder";
/// The binaries the image ships, as cargo names them.
const BINARIES: [&str; 2] = ["pixelmill", "pixelmill-load"];
/// What the builder stage writes to /etc/passwd and /etc/group (the Dockerfile's `printf` lines).
pub(crate) const PASSWD: [&str; 2] =
    ["root:x:0:0:root:/root:/sbin/nologin", "pixelmill:x:10001:10001:pixelmill:/var/lib/pixelmill:/sbin/nologin"];
pub(crate) const GROUP: [&str; 2] = ["root:x:0:", "pixelmill:x:10001:"];
/// The data directory the builder stage makes, under /out.
const DATA_DIR: &str = "var/lib/pixelmill";
/// The CA certificates distroless ships, copied from this machine.
const CA_CERTIFICATES: &str = "/etc/ssl/certs/ca-certificates.crt";
/// Name of the image and of its container, in this run's own storage.
const NAME: &str = "pixelmill-smoke";
/// Programs the smoke runs, and the Debian packages that provide them.
const TOOLS: &[(&str, &str)] = &[("buildah", "buildah"), ("objcopy", "binutils"), ("ldd", "libc-bin")];
/// The oldest buildah known to build and run these images (Debian 12's).
const BUILDAH_MINIMUM: [u32; 3] = [1, 28, 0];
/// How long the server may take to stop after SIGTERM: it drains for at most
/// `shutdown_drain_seconds` (25 by default), and an idle server stops at once.
const STOP_TIMEOUT: Duration = Duration::from_secs(30);

/// Builds the image, runs it on `port`, checks it, and removes everything it made.
pub(crate) fn run(ctx: &Context, steps: &mut Steps<'_>, port: u16) -> Result<(), StepError> {
    let stage = steps.run("preflight", || {
        let stage = RuntimeStage::parse(&context::read_file(ctx, "Dockerfile")?)?;
        ensure_tools(ctx)?;
        Ok(stage)
    })?;
    let release = steps.run("build", || build_binaries(ctx))?;
    let dir = steps.run("context", || assemble(ctx, &stage, &release))?;
    let buildah = Buildah::new(ctx)?;
    let checked = steps
        .run("image", || build_image(ctx, &buildah, &stage, &dir))
        .and_then(|()| steps.run("run", || exercise(ctx, &buildah, &stage, port)))
        .and_then(|()| match ctx.var("PIXELMILL_SMOKE_ARCHIVE").filter(|path| !path.is_empty()) {
            // The checked image, kept as a docker archive (for a cluster's node to load).
            Some(path) => steps.run("archive", || {
                let target = format!("docker-archive:{path}:{}", archive_name(ctx));
                let _ = std::fs::remove_file(&path);
                ctx.run(&buildah.cmd(["push", NAME, &target]))
            }),
            None => Ok(()),
        });
    let removed = steps.run("clean up", || buildah.remove_everything(ctx));
    checked.and(removed)?;
    ctx.say(&format!(
        "the image runs as {} and serves: /healthz, a stateless JPEG render and the release smoke test passed",
        stage.user
    ));
    Ok(())
}

/// The name an archived smoke image carries: `PIXELMILL_SMOKE_ARCHIVE_NAME`, else
/// `localhost/pixelmill:smoke`.
pub(crate) fn archive_name(ctx: &Context) -> String {
    ctx.var("PIXELMILL_SMOKE_ARCHIVE_NAME")
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "localhost/pixelmill:smoke".to_owned())
}

/// The runtime stage of the Dockerfile: its instructions after the last FROM, as the smoke
/// image replays them, and what the image's config must say because of them.
#[derive(Debug, PartialEq)]
pub(crate) struct RuntimeStage {
    pub(crate) instructions: Vec<String>,
    pub(crate) user: String,
    pub(crate) env: Vec<(String, String)>,
    /// `8080/tcp`, as in the image's config.
    pub(crate) exposed: Vec<String>,
    pub(crate) entrypoint: Vec<String>,
    pub(crate) cmd: Vec<String>,
}

impl RuntimeStage {
    pub(crate) fn parse(dockerfile: &str) -> Result<RuntimeStage, String> {
        let lines = logical_lines(dockerfile);
        let from = lines.iter().rposition(|(keyword, _)| keyword == "FROM").ok_or("the Dockerfile has no FROM")?;
        let mut stage = RuntimeStage {
            instructions: Vec::new(),
            user: String::new(),
            env: Vec::new(),
            exposed: Vec::new(),
            entrypoint: Vec::new(),
            cmd: Vec::new(),
        };
        for (keyword, rest) in &lines[from + 1..] {
            let instruction = match keyword.as_str() {
                "COPY" => format!("COPY {}", copy_from_builder(rest)?),
                "ENV" => {
                    stage.env.extend(env_pairs(rest)?);
                    format!("ENV {rest}")
                }
                "USER" => {
                    stage.user = rest.clone();
                    format!("USER {rest}")
                }
                "EXPOSE" => {
                    let ports = rest.split_whitespace();
                    stage.exposed.extend(
                        ports.map(|port| if port.contains('/') { port.to_owned() } else { format!("{port}/tcp") }),
                    );
                    format!("EXPOSE {rest}")
                }
                "ENTRYPOINT" => {
                    stage.entrypoint = exec_form(keyword, rest)?;
                    format!("ENTRYPOINT {rest}")
                }
                "CMD" => {
                    stage.cmd = exec_form(keyword, rest)?;
                    format!("CMD {rest}")
                }
                "LABEL" | "WORKDIR" | "STOPSIGNAL" | "ARG" => format!("{keyword} {rest}"),
                other => {
                    return Err(format!(
                        "`{other}` in the Dockerfile's runtime stage: that stage has no shell (distroless), \
                         so it only copies from the `{BUILDER_STAGE}` stage and sets metadata"
                    ));
                }
            };
            stage.instructions.push(instruction);
        }
        if stage.user.is_empty() {
            return Err("the Dockerfile's runtime stage sets no USER: the image must not run as root".to_owned());
        }
        if stage.entrypoint.is_empty() {
            return Err("the Dockerfile's runtime stage sets no ENTRYPOINT".to_owned());
        }
        Ok(stage)
    }

    fn env_value(&self, name: &str) -> Option<&str> {
        self.env.iter().rev().find(|(key, _)| key == name).map(|(_, value)| value.as_str())
    }

    /// The command the image runs: entrypoint, then command.
    fn command(&self) -> Vec<String> {
        self.entrypoint.iter().chain(&self.cmd).cloned().collect()
    }
}

/// (KEYWORD, arguments) per instruction: comments and blank lines dropped, continuation
/// lines joined.
fn logical_lines(dockerfile: &str) -> Vec<(String, String)> {
    let mut lines = Vec::new();
    let mut current = String::new();
    for line in dockerfile.lines() {
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        match trimmed.strip_suffix('\\') {
            Some(part) => {
                current.push_str(part.trim());
                current.push(' ');
            }
            None => {
                current.push_str(trimmed);
                let (keyword, rest) = current.split_once(char::is_whitespace).unwrap_or((&current, ""));
                lines.push((keyword.to_ascii_uppercase(), rest.trim().to_owned()));
                current.clear();
            }
        }
    }
    lines
}

/// A runtime-stage COPY's arguments with `--from=builder /out/x` turned into `builder/out/x`
/// of the smoke image's build context.
fn copy_from_builder(arguments: &str) -> Result<String, String> {
    let words: Vec<&str> = arguments.split_whitespace().collect();
    let flags: Vec<&str> = words.iter().copied().take_while(|word| word.starts_with("--")).collect();
    let paths = &words[flags.len()..];
    let from = flags.iter().find_map(|flag| flag.strip_prefix("--from="));
    if from != Some(BUILDER_STAGE) || paths.len() < 2 {
        return Err(format!(
            "`COPY {arguments}` in the Dockerfile's runtime stage: copy from the `{BUILDER_STAGE}` stage \
             (`COPY --from={BUILDER_STAGE} /out/... DEST`)"
        ));
    }
    let (destination, sources) = paths.split_last().ok_or("COPY without paths")?;
    let mut rewritten: Vec<String> =
        flags.iter().filter(|flag| !flag.starts_with("--from=")).map(|flag| (*flag).to_owned()).collect();
    for source in sources {
        let relative = source
            .strip_prefix('/')
            .ok_or_else(|| format!("`COPY {arguments}`: a source in the {BUILDER_STAGE} stage is an absolute path"))?;
        rewritten.push(format!("{BUILDER_STAGE}/{relative}"));
    }
    rewritten.push((*destination).to_owned());
    Ok(rewritten.join(" "))
}

/// The `KEY=value` pairs of an ENV instruction (values may be double-quoted, without spaces).
fn env_pairs(arguments: &str) -> Result<Vec<(String, String)>, String> {
    arguments
        .split_whitespace()
        .map(|pair| {
            let (key, value) =
                pair.split_once('=').ok_or_else(|| format!("`ENV {arguments}`: write each variable as KEY=value"))?;
            let value = value.strip_prefix('"').and_then(|v| v.strip_suffix('"')).unwrap_or(value);
            Ok((key.to_owned(), value.to_owned()))
        })
        .collect()
}

/// The JSON array of an exec-form ENTRYPOINT or CMD.
fn exec_form(keyword: &str, arguments: &str) -> Result<Vec<String>, String> {
    serde_json::from_str(arguments).map_err(|_| {
        format!("`{keyword} {arguments}`: use the exec form (a JSON array): the image has no shell to run a string")
    })
}

/// The Dockerfile of the smoke image: the runtime stage on the assembled base.
pub(crate) fn containerfile(stage: &RuntimeStage) -> String {
    let mut text = String::from(
        "# The runtime stage of the Dockerfile, on the base `cargo xtask image smoke` assembles\n\
         # (shared libraries, loader, CA certificates, /tmp, /var/lib) in place of distroless.\n\
         FROM scratch\n\
         COPY base/ /\n",
    );
    for instruction in &stage.instructions {
        text.push_str(instruction);
        text.push('\n');
    }
    text
}

/// The shared libraries (and the dynamic loader) in `ldd` output; the vDSO has no file.
pub(crate) fn shared_libraries(ldd: &str) -> Result<Vec<PathBuf>, String> {
    let mut libraries = Vec::new();
    for line in ldd.lines() {
        if line.contains("not found") {
            return Err(format!("a shared library is missing: {}", line.trim()));
        }
        let target = line.split_once("=>").map_or(line, |(_, target)| target);
        if let Some(path) = target.split_whitespace().next().filter(|word| word.starts_with('/')) {
            libraries.push(PathBuf::from(path));
        }
    }
    Ok(libraries)
}

/// The mismatches between the built image's config (`buildah inspect --type image` output)
/// and the runtime stage.
pub(crate) fn check_config(stage: &RuntimeStage, inspect: &str) -> Result<(), String> {
    let json: serde_json::Value =
        serde_json::from_str(inspect).map_err(|e| format!("buildah inspect answered no JSON: {e}"))?;
    let config = &json["OCIv1"]["config"];
    let strings = |value: &serde_json::Value| -> Vec<String> {
        value.as_array().into_iter().flatten().filter_map(|v| v.as_str().map(str::to_owned)).collect()
    };
    let mut mismatches = Vec::new();
    let user = config["User"].as_str().unwrap_or("");
    if user != stage.user {
        mismatches.push(format!("user is `{user}`, the Dockerfile says `{}`", stage.user));
    }
    let env = strings(&config["Env"]);
    for (key, value) in &stage.env {
        let pair = format!("{key}={value}");
        if !env.contains(&pair) {
            mismatches.push(format!("the environment has no {pair}"));
        }
    }
    for port in &stage.exposed {
        if config["ExposedPorts"].get(port).is_none() {
            mismatches.push(format!("port {port} is not exposed"));
        }
    }
    let entrypoint = strings(&config["Entrypoint"]);
    if entrypoint != stage.entrypoint {
        mismatches.push(format!("the entrypoint is {entrypoint:?}, the Dockerfile says {:?}", stage.entrypoint));
    }
    let command = strings(&config["Cmd"]);
    if command != stage.cmd {
        mismatches.push(format!("the command is {command:?}, the Dockerfile says {:?}", stage.cmd));
    }
    if mismatches.is_empty() {
        Ok(())
    } else {
        Err(format!("the built image's config differs from the Dockerfile: {}", mismatches.join("; ")))
    }
}

fn ensure_tools(ctx: &Context) -> Result<(), String> {
    system::ensure(ctx, TOOLS)?;
    let said = ctx.output(&Cmd::new("buildah").arg("--version"), "")?;
    match preflight::parse_version(&said) {
        Some(version) if version >= BUILDAH_MINIMUM => Ok(()),
        _ => Err(format!("buildah 1.28 or later is needed, this one says: {said}")),
    }
}

/// `cargo build --release --locked` of the two binaries, as the image's builder stage does;
/// returns the directory they are in. With `PIXELMILL_SMOKE_BUILD=workspace` (what `cargo xtask
/// ci` sets) it is instead the test build of the whole workspace (`cargo build --workspace
/// --all-targets`, the units `cargo test` built and the executables), which the tests have just
/// made: the smoke then adds no build of its own to CI.
fn build_binaries(ctx: &Context) -> Result<PathBuf, String> {
    let cargo = ctx.var("CARGO").unwrap_or_else(|| "cargo".to_owned());
    let target = ctx.var("CARGO_TARGET_DIR").filter(|dir| !dir.is_empty()).unwrap_or_else(|| "target".to_owned());
    if ctx.var("PIXELMILL_SMOKE_BUILD").as_deref() == Some("workspace") {
        ctx.run(&Cmd::new(&cargo).args(["build", "--locked", "--workspace", "--all-targets"]))?;
        return Ok(ctx.root.join(target).join("debug"));
    }
    let packages = BINARIES.iter().flat_map(|binary| ["-p", binary]);
    ctx.run(&Cmd::new(&cargo).args(["build", "--release", "--locked"]).args(packages))?;
    Ok(ctx.root.join(target).join("release"))
}

/// The bytes of every file under `dir`.
fn size_of_tree(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|entry| match entry.file_type() {
            Ok(kind) if kind.is_dir() => size_of_tree(&entry.path()),
            Ok(_) => entry.metadata().map_or(0, |m| m.len()),
            Err(_) => 0,
        })
        .sum()
}

/// Lays out the build context of the smoke image; returns its directory.
fn assemble(ctx: &Context, stage: &RuntimeStage, release: &Path) -> Result<PathBuf, String> {
    let dir = ctx.scratch()?.join("image");
    let base = dir.join("base");
    let out = dir.join(BUILDER_STAGE).join("out");
    let _ = std::fs::remove_dir_all(&dir);
    for path in [base.join("tmp"), base.join("var/lib"), out.join("usr/local/bin"), out.join("etc"), out.join(DATA_DIR)]
    {
        std::fs::create_dir_all(&path).map_err(|e| format!("cannot create {}: {e}", path.display()))?;
    }
    set_mode(&base.join("tmp"), 0o1777)?;
    let mut libraries = BTreeSet::new();
    for binary in BINARIES {
        let built = release.join(binary);
        let stripped = out.join("usr/local/bin").join(binary);
        let strip = Cmd::new("objcopy").arg("--strip-debug").arg(built.display().to_string());
        ctx.run(&strip.arg(stripped.display().to_string()))?;
        let ldd = ctx.output(&Cmd::new("ldd").arg(built.display().to_string()), "")?;
        libraries.extend(shared_libraries(&ldd)?);
    }
    let certificates = Path::new(CA_CERTIFICATES);
    let copies = libraries.iter().map(PathBuf::as_path).chain(certificates.is_file().then_some(certificates));
    for file in copies {
        let target = base.join(file.strip_prefix("/").unwrap_or(file));
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
        }
        // Follows symbolic links: the loader and the libraries arrive as the files they name.
        std::fs::copy(file, &target).map_err(|e| format!("cannot copy {}: {e}", file.display()))?;
    }
    write(&out.join("etc/passwd"), &lines(&PASSWD))?;
    write(&out.join("etc/group"), &lines(&GROUP))?;
    write(&dir.join("Containerfile"), &containerfile(stage))?;
    ctx.say(&format!(
        "write {}: the runtime stage of Dockerfile on a base of {} files",
        dir.display(),
        libraries.len() + 1
    ));
    let mebibytes = |bytes: u64| bytes as f64 / f64::from(1 << 20);
    let binaries: Vec<String> = BINARIES
        .iter()
        .map(|binary| {
            let size = std::fs::metadata(out.join("usr/local/bin").join(binary)).map_or(0, |m| m.len());
            format!("{binary} {:.1} MiB", mebibytes(size))
        })
        .collect();
    ctx.say(&format!(
        "image size: {:.1} MiB ({}; shared libraries and certificates {:.1} MiB)",
        mebibytes(size_of_tree(&dir)),
        binaries.join(", "),
        mebibytes(size_of_tree(&base)),
    ));
    Ok(dir)
}

fn lines(lines: &[&str]) -> String {
    lines.iter().map(|line| format!("{line}\n")).collect()
}

fn write(path: &Path, text: &str) -> Result<(), String> {
    std::fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

fn set_mode(path: &Path, mode: u32) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(|e| format!("cannot set the mode of {}: {e}", path.display()))
}

/// buildah with the storage of this run: vfs (no overlay or fuse needed) in a directory of the
/// run's scratch space, so nothing collides with other images on the machine and nothing stays.
struct Buildah {
    storage: PathBuf,
}

impl Buildah {
    fn new(ctx: &Context) -> Result<Buildah, StepError> {
        let storage = ctx.scratch().map_err(|message| StepError { step: "image", message })?.join("storage");
        Ok(Buildah { storage })
    }

    fn cmd<S: AsRef<str>>(&self, args: impl IntoIterator<Item = S>) -> Cmd {
        let root = self.storage.join("root").display().to_string();
        let runroot = self.storage.join("runroot").display().to_string();
        Cmd::new("buildah").args(["--storage-driver", "vfs", "--root", &root, "--runroot", &runroot]).args(args)
    }

    /// `buildah run` in the container, with the image's user and environment plus `env`.
    fn run_in(&self, env: &[(&str, &str)], command: &[String]) -> Cmd {
        let mut cmd = self.cmd(["run", "--isolation", "chroot"]);
        for (key, value) in env {
            cmd = cmd.args(["--env", &format!("{key}={value}")]);
        }
        cmd.args([NAME, "--"]).args(command)
    }

    /// Removes the container and the image, then the storage itself.
    fn remove_everything(&self, ctx: &Context) -> Result<(), String> {
        // Either may fail when the run stopped before making it; the storage goes anyway.
        let _ = ctx.run(&self.cmd(["rm", "--all"]));
        let _ = ctx.run(&self.cmd(["rmi", "--all", "--force"]));
        let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap_or_default();
        let storage = self.storage.display().to_string();
        if let Some(mount) = mounts.lines().filter_map(|line| line.split(' ').nth(1)).find(|m| m.starts_with(&storage))
        {
            return Err(format!("{mount} is still mounted: unmount it, then remove {storage}"));
        }
        match std::fs::remove_dir_all(&self.storage) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(format!("cannot remove {storage}: {e}")),
        }
    }
}

/// Builds the smoke image and its container, and checks the image's config.
fn build_image(ctx: &Context, buildah: &Buildah, stage: &RuntimeStage, dir: &Path) -> Result<(), String> {
    let dir = dir.display().to_string();
    let file = format!("{dir}/Containerfile");
    ctx.run(&buildah.cmd(["bud", "--isolation", "chroot", "--file", &file, "--tag", NAME, &dir]))?;
    ctx.output(&buildah.cmd(["from", "--name", NAME, NAME]), NAME)?;
    let inspect = ctx.output(&buildah.cmd(["inspect", "--type", "image", NAME]), "{}")?;
    if ctx.dry_run {
        return Ok(());
    }
    check_config(stage, &inspect)
}

/// Steps 2 to 6 of the module documentation.
fn exercise(ctx: &Context, buildah: &Buildah, stage: &RuntimeStage, port: u16) -> Result<(), String> {
    let load = ["/usr/local/bin/pixelmill-load".to_owned(), "--version".to_owned()];
    let version = ctx.output(&buildah.run_in(&[], &load), "pixelmill-load <version>")?;
    if !version.starts_with("pixelmill-load ") {
        return Err(format!("`pixelmill-load --version` answered `{version}`"));
    }
    let mut create = stage.entrypoint.clone();
    create.extend(["keys", "create", "--name", "image-smoke"].map(str::to_owned));
    let key = ctx.output(&buildah.run_in(&[], &create), "<key>")?;
    if !ctx.dry_run && (key.is_empty() || key.contains(char::is_whitespace)) {
        return Err(format!("`pixelmill keys create` printed no key: `{key}`"));
    }

    let listen = stage
        .env_value("PIXELMILL_LISTEN")
        .ok_or("the Dockerfile sets no PIXELMILL_LISTEN: the service would listen on loopback only")?;
    let host = listen.rsplit_once(':').map_or(listen, |(host, _)| host);
    let listen = format!("{host}:{port}");
    let log = ctx.scratch()?.join("serve.log");
    let mut server = ctx.spawn(&buildah.run_in(&[("PIXELMILL_LISTEN", &listen)], &stage.command()), &log)?;
    let base = format!("http://127.0.0.1:{port}");
    let checked = wait_until_healthy(ctx, &base, server.as_mut())
        .and_then(|()| render_stateless(ctx, &base, &key))
        .and_then(|()| smoke::run_with_key(ctx, &base, Some(&key)));
    let stopped = stop(ctx, server);
    checked.and(stopped).map_err(|e| format!("{e}\n{}", log_tail(&log)))
}

/// Polls `GET /healthz` until it answers 200, the server exits, or the tries run out.
fn wait_until_healthy(ctx: &Context, base: &str, mut server: Option<&mut Child>) -> Result<(), String> {
    let url = format!("{base}/healthz");
    let curl = Cmd::new("curl").args(["--silent", "--show-error", "--fail", "--max-time", "5", "--output"]);
    let curl = curl.args(["/dev/null", &url]);
    let mut last = String::new();
    for attempt in 1..=ctx.smoke_attempts.max(1) {
        if attempt > 1 {
            ctx.pause(ctx.smoke_retry_delay);
        }
        match ctx.output(&curl, "") {
            Ok(_) => return Ok(()),
            Err(error) => last = error,
        }
        if let Some(status) = server.as_mut().and_then(|child| child.try_wait().ok().flatten()) {
            return Err(format!("the server exited ({status}) before it answered /healthz"));
        }
    }
    Err(format!("GET /healthz: no answer after {} tries; last: {last}", ctx.smoke_attempts.max(1)))
}

/// `POST /v1/render?w=100&fmt=jpeg` with a PNG: the answer is a JPEG (libjpeg-turbo linked and
/// working in the image).
fn render_stateless(ctx: &Context, base: &str, key: &str) -> Result<(), String> {
    let scratch = ctx.scratch()?;
    let (png, jpeg, auth) = (scratch.join("stateless.png"), scratch.join("stateless.jpg"), scratch.join("auth"));
    if !ctx.dry_run {
        write_bytes(&png, &smoke::unique_png())?;
        smoke::header_file(&auth, key)?;
    }
    let cmd = Cmd::new("curl").args(["--silent", "--show-error", "--max-time", "30", "--request", "POST"]).args([
        "--output".to_owned(),
        jpeg.display().to_string(),
        "--write-out".to_owned(),
        "%{http_code}".to_owned(),
        "--header".to_owned(),
        format!("@{}", auth.display()),
        "--header".to_owned(),
        "Content-Type: image/png".to_owned(),
        "--data-binary".to_owned(),
        format!("@{}", png.display()),
        format!("{base}/v1/render?w=100&fmt=jpeg"),
    ]);
    let status = ctx.output(&cmd, "200")?;
    if ctx.dry_run {
        return Ok(());
    }
    let body = std::fs::read(&jpeg).unwrap_or_default();
    if status != "200" || !body.starts_with(&[0xFF, 0xD8, 0xFF]) {
        let said = String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned();
        return Err(format!("POST /v1/render?w=100&fmt=jpeg answered {status}, not a JPEG: {said}"));
    }
    Ok(())
}

fn write_bytes(path: &Path, bytes: &[u8]) -> Result<(), String> {
    std::fs::write(path, bytes).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// SIGTERM to the server's process group (buildah, its chroot runtime, the service), then a wait
/// for all of them to end; SIGKILL and an error if they do not within `STOP_TIMEOUT`.
fn stop(ctx: &Context, server: Option<Child>) -> Result<(), String> {
    let Some(mut child) = server else {
        return Ok(());
    };
    let group = format!("-{}", child.id());
    if child.try_wait().ok().flatten().is_none() {
        if let Err(error) = ctx.run(&Cmd::new("kill").args(["-TERM", "--", &group])) {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("cannot stop the server: {error}"));
        }
        let started = Instant::now();
        while child.try_wait().ok().flatten().is_none() {
            if started.elapsed() > STOP_TIMEOUT {
                let _ = ctx.run(&Cmd::new("kill").args(["-KILL", "--", &group]));
                let _ = child.wait();
                return Err(format!("the server did not stop within {} s of SIGTERM", STOP_TIMEOUT.as_secs()));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    // Nothing of the group may outlive buildah (`kill -0` fails once the group is empty).
    if ctx.read(&Cmd::new("kill").args(["-0", "--", &group])).is_ok() {
        let _ = ctx.run(&Cmd::new("kill").args(["-KILL", "--", &group]));
        return Err("processes of the server outlived it; they were killed".to_owned());
    }
    Ok(())
}

/// The last lines of the server's log, for a failure message.
fn log_tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let tail = lines[lines.len().saturating_sub(20)..].join("\n");
    format!("the server's log ({}):\n{tail}", cmd::quote(&log.display().to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOCKERFILE: &str = r#"# A comment.
FROM rust@sha256:0000 AS builder
RUN make \
    && install
FROM distroless@sha256:1111 AS runtime
LABEL a="b" \
      c="d"
COPY --from=builder /out/usr/local/bin/ /usr/local/bin/
COPY --from=builder --chown=10001:10001 /out/var/lib/x /var/lib/x
ENV A=1 \
    B="two"
USER 10001:10001
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/pixelmill"]
CMD ["serve"]
"#;

    #[test]
    fn the_runtime_stage_is_replayed_with_copies_from_the_build_context() {
        let stage = RuntimeStage::parse(DOCKERFILE).unwrap();
        assert_eq!(
            stage.instructions,
            [
                r#"LABEL a="b" c="d""#,
                "COPY builder/out/usr/local/bin/ /usr/local/bin/",
                "COPY --chown=10001:10001 builder/out/var/lib/x /var/lib/x",
                r#"ENV A=1 B="two""#,
                "USER 10001:10001",
                "EXPOSE 8080",
                r#"ENTRYPOINT ["/usr/local/bin/pixelmill"]"#,
                r#"CMD ["serve"]"#,
            ]
        );
        assert_eq!(stage.env, [("A".to_owned(), "1".to_owned()), ("B".to_owned(), "two".to_owned())]);
        assert_eq!(stage.exposed, ["8080/tcp"]);
        assert_eq!(stage.command(), ["/usr/local/bin/pixelmill", "serve"]);
        let text = containerfile(&stage);
        assert!(text.contains("\nFROM scratch\nCOPY base/ /\nLABEL a=\"b\" c=\"d\"\n"), "{text}");
        assert!(text.ends_with("CMD [\"serve\"]\n"), "{text}");
    }

    #[test]
    fn a_runtime_stage_the_smoke_cannot_replay_is_refused() {
        let refused = |from: &str, to: &str| RuntimeStage::parse(&DOCKERFILE.replace(from, to)).unwrap_err();
        let error = refused("CMD [\"serve\"]", "RUN mkdir /data");
        assert!(error.starts_with("`RUN` in the Dockerfile's runtime stage"), "{error}");
        let error = refused("COPY --from=builder /out/usr", "COPY /out/usr");
        assert!(error.contains("copy from the `builder` stage"), "{error}");
        let error = refused(r#"ENTRYPOINT ["/usr/local/bin/pixelmill"]"#, "ENTRYPOINT /usr/local/bin/pixelmill");
        assert!(error.contains("use the exec form"), "{error}");
        let error = refused("USER 10001:10001\n", "");
        assert!(error.contains("sets no USER"), "{error}");
        let error = refused("    B=\"two\"", "    B two");
        assert!(error.contains("KEY=value"), "{error}");
    }

    #[test]
    fn ldd_output_gives_the_libraries_and_the_loader() {
        let ldd = "\tlinux-vdso.so.1 (0x00007ffd0a1f2000)\n\
                   \tlibgcc_s.so.1 => /lib/x86_64-linux-gnu/libgcc_s.so.1 (0x00007f84378ca000)\n\
                   \tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f8434d3e000)\n\
                   \t/lib64/ld-linux-x86-64.so.2 (0x00007f84378fd000)\n";
        let libraries = shared_libraries(ldd).unwrap();
        let expected =
            ["/lib/x86_64-linux-gnu/libgcc_s.so.1", "/lib/x86_64-linux-gnu/libc.so.6", "/lib64/ld-linux-x86-64.so.2"];
        assert_eq!(libraries, expected.map(PathBuf::from));
        assert_eq!(shared_libraries("\tstatically linked\n").unwrap(), Vec::<PathBuf>::new());
        let error = shared_libraries("\tlibwebp.so.7 => not found\n").unwrap_err();
        assert_eq!(error, "a shared library is missing: libwebp.so.7 => not found");
    }

    #[test]
    fn the_built_config_must_be_what_the_dockerfile_declares() {
        let stage = RuntimeStage::parse(DOCKERFILE).unwrap();
        let config = |user: &str, cmd: &str| {
            format!(
                r#"{{"OCIv1":{{"config":{{"User":"{user}","ExposedPorts":{{"8080/tcp":{{}}}},
                "Env":["PATH=/usr/bin","A=1","B=two"],"Entrypoint":["/usr/local/bin/pixelmill"],"Cmd":{cmd}}}}}}}"#
            )
        };
        check_config(&stage, &config("10001:10001", r#"["serve"]"#)).unwrap();
        let error = check_config(&stage, &config("0", "null")).unwrap_err();
        assert_eq!(
            error,
            "the built image's config differs from the Dockerfile: user is `0`, the Dockerfile says `10001:10001`; \
             the command is [], the Dockerfile says [\"serve\"]"
        );
        assert!(check_config(&stage, "not json").unwrap_err().starts_with("buildah inspect answered no JSON"));
    }
}
