//! `deploy local`: the Helm driver's command sequence, its image named by digest, the dry run,
//! its rollbacks, and the preflight that keeps it off the Argo CD clusters.

use super::deploy::deploy;
use super::*;

const HISTORY: &str = "helm history pixelmill --max 1 -o json -n pixelmill-local";
const ROLLOUT: &str = "kubectl -n pixelmill-local rollout status deployment/pixelmill --timeout=300s";
const TERMINATING: &str =
    "kubectl -n pixelmill-local get pods -l app.kubernetes.io/name=pixelmill,app.kubernetes.io/instance=pixelmill -o";
const UPGRADE: &str =
    "helm upgrade --install pixelmill helm/pixelmill --create-namespace -n pixelmill-local -f deploy/local/values.yaml";

/// An OCI archive of one image whose manifest is `DIGEST`, as `buildah push oci-archive:` writes.
fn oci_archive(fixture: &Fixture) -> String {
    let layout = fixture.dir.path().join("layout");
    let blobs = layout.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).unwrap();
    std::fs::write(blobs.join(&DIGEST["sha256:".len()..]), "{}").unwrap();
    std::fs::write(layout.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    let index = format!(
        r#"{{"schemaVersion":2,"manifests":[{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{DIGEST}","size":2,"annotations":{{"org.opencontainers.image.ref.name":"built"}}}}]}}"#
    );
    std::fs::write(layout.join("index.json"), index).unwrap();
    let archive = fixture.dir.path().join("image.tar");
    let status = Command::new("tar")
        .args(["-cf", archive.to_str().unwrap(), "-C", layout.to_str().unwrap(), "oci-layout", "index.json", "blobs"])
        .status()
        .unwrap();
    assert!(status.success());
    archive.display().to_string()
}

/// A fixture whose cluster answers as a kind cluster with the release installed at `revision`
/// (none: not installed), the Service routing to the smoke-test server.
fn local_fixture(name: &str, revision: Option<u64>) -> Fixture {
    let fixture = Fixture::new(name);
    fixture.rule("kubectl config current-context", 0, "kind-pixelmill");
    let address = fixture.server.url.trim_start_matches("http://").to_owned();
    fixture.rule("kubectl -n pixelmill-local get service pixelmill *", 0, &address);
    match revision {
        Some(revision) => fixture.rule(
            &format!("{HISTORY}*"),
            0,
            &format!(r#"[{{"revision":{revision},"status":"deployed","chart":"pixelmill-0.1.0"}}]"#),
        ),
        None => fixture.rule(&format!("{HISTORY}*"), 1, "Error: release: not found"),
    }
    fixture
}

fn helm_calls(fixture: &Fixture) -> Vec<String> {
    fixture.calls().into_iter().filter(|call| call.starts_with("helm ") && !call.contains("--short")).collect()
}

#[test]
fn deploy_local_loads_the_image_by_digest_releases_with_helm_and_records_it_here() {
    let fixture = local_fixture("local", None);
    let archive = oci_archive(&fixture);
    let head = fixture.git(&["rev-parse", "HEAD"]);

    let (ctx, result) = deploy(&fixture, &["local", "--image-archive", &archive]);
    result.unwrap();

    let expected = vec![
        "kubectl version --client".to_owned(),
        "helm version --short".to_owned(),
        "kubectl config current-context".to_owned(),
        "kind load image-archive <scratch>/image-named.tar".to_owned(),
        HISTORY.to_owned(),
        format!("{UPGRADE} --set-string image.digest={DIGEST} --wait --timeout 300s"),
        ROLLOUT.to_owned(),
        format!("{TERMINATING} jsonpath={{range .items[?(@.metadata.deletionTimestamp)]}}{{.metadata.name}}{{\"\\n\"}}{{end}}"),
        "kubectl -n pixelmill-local get service pixelmill -o jsonpath={.spec.clusterIP}:{.spec.ports[?(@.name==\"http\")].port}"
            .to_owned(),
    ];
    assert_eq!(fixture.calls(), expected);
    // The key of the environment is used; none is made in a pod.
    assert_eq!(fixture.server.lines().len(), 4, "{:?}", fixture.server.lines());

    // The record: the built commit tagged here with the digest, nothing pushed or committed.
    let tag = format!("verified/local/{}", &head[..12]);
    assert_eq!(fixture.git(&["tag", "-l", "verified/*"]), tag);
    assert_eq!(fixture.git(&["tag", "-l", "--format=%(contents:subject)", &tag]), DIGEST);
    assert_eq!(fixture.remote_git(&["tag"]), "");
    assert_eq!(fixture.git(&["rev-parse", "HEAD"]), head);
    let printed = ctx.output.lines().join("\n");
    assert!(printed.contains("deploying local to the cluster of context `kind-pixelmill`"), "{printed}");
    for step in ["preflight", "image", "release", "verify", "record"] {
        assert!(printed.contains(&format!("<== {step}: ok (")), "{step}: {printed}");
    }
}

#[test]
fn extra_values_follow_the_environments_and_gitops_environments_refuse_them() {
    let fixture = local_fixture("local-values", Some(2));
    let archive = oci_archive(&fixture);
    let (_, result) = deploy(&fixture, &["local", "--image-archive", &archive, "--values", "/tmp/cluster.yaml"]);
    result.unwrap();
    let upgrade = helm_calls(&fixture).into_iter().find(|call| call.starts_with("helm upgrade")).unwrap();
    assert!(upgrade.contains("-f deploy/local/values.yaml -f /tmp/cluster.yaml --set-string"), "{upgrade}");
    let (_, result) = deploy(&fixture, &["staging", "--values", "/tmp/cluster.yaml"]);
    assert!(result.unwrap_err().contains("--image-archive and --values are for Helm environments"));
}

#[test]
fn the_archive_names_the_image_by_tag_and_by_its_manifest_digest() {
    let index = format!(r#"{{"schemaVersion":2,"manifests":[{{"digest":"{DIGEST}","size":7,"mediaType":"m"}}]}}"#);
    let (named, digest) = crate::image::named_index(&index, "localhost/pixelmill", "abc123").unwrap();
    assert_eq!(digest.as_str(), DIGEST);
    let json: serde_json::Value = serde_json::from_str(&named).unwrap();
    let names: Vec<&str> = json["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["annotations"]["io.containerd.image.name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["localhost/pixelmill:abc123".to_owned(), format!("localhost/pixelmill@{DIGEST}")]);
    for manifest in json["manifests"].as_array().unwrap() {
        assert_eq!(manifest["digest"], DIGEST);
        assert_eq!(manifest["size"], 7);
    }
    let two = format!(r#"{{"manifests":[{{"digest":"{DIGEST}"}},{{"digest":"{DIGEST_2}"}}]}}"#);
    assert!(crate::image::named_index(&two, "r", "t").unwrap_err().contains("lists 2 images"));
}

#[test]
fn the_smoke_test_waits_until_the_replaced_pods_are_gone() {
    let fixture = local_fixture("local-terminating", Some(3));
    fixture.rule(&format!("{TERMINATING} *"), 0, "pixelmill-7cd7b7f96b-cw6xh pixelmill-7cd7b7f96b-vg6l8");
    let archive = oci_archive(&fixture);
    let (_, result) = deploy(&fixture, &["local", "--image-archive", &archive]);
    result.unwrap();
    let calls = fixture.calls();
    let wait = "kubectl -n pixelmill-local wait --for=delete --timeout=300s pod/pixelmill-7cd7b7f96b-cw6xh pod/pixelmill-7cd7b7f96b-vg6l8";
    let waited = calls.iter().position(|call| call == wait).unwrap_or_else(|| panic!("{calls:?}"));
    let service = calls.iter().position(|call| call.contains("get service")).unwrap();
    assert!(waited < service, "the wait comes before the smoke test: {calls:?}");
    // A wait that times out fails the release's check, which is rolled back.
    fixture.clear_calls();
    fixture.rule("kubectl -n pixelmill-local wait *", 1, "error: timed out waiting for the condition");
    let (_, result) = deploy(&fixture, &["local", "--image-archive", &archive]);
    let error = result.unwrap_err();
    assert!(error.contains("step `verify` failed") && error.contains("rolled pixelmill back to revision 3"), "{error}");
}

#[test]
fn a_failed_smoke_test_rolls_back_to_the_revision_before() {
    let fixture = local_fixture("local-smoke", Some(4));
    fixture.server.behave(Behaviour { render_status: 500, ..Behaviour::default() });
    let archive = oci_archive(&fixture);
    let (_, result) = deploy(&fixture, &["local", "--image-archive", &archive]);
    let error = result.unwrap_err();
    assert!(error.contains("step `verify` failed"), "{error}");
    assert!(error.contains("rolled back: rolled pixelmill back to revision 4"), "{error}");
    let calls = helm_calls(&fixture);
    assert_eq!(calls.last().unwrap(), "helm rollback pixelmill 4 --wait --timeout 300s -n pixelmill-local");
    assert_eq!(fixture.git(&["tag", "-l", "verified/*"]), "", "a failed release is not recorded");
}

#[test]
fn a_first_install_that_never_gets_ready_is_uninstalled() {
    let fixture = local_fixture("local-first", None);
    fixture.rule("helm upgrade *", 1, "Error: context deadline exceeded");
    let archive = oci_archive(&fixture);
    let (_, result) = deploy(&fixture, &["local", "--image-archive", &archive]);
    let error = result.unwrap_err();
    assert!(error.contains("step `release` failed"), "{error}");
    assert!(error.contains("rolled back: uninstalled pixelmill (it was its first install)"), "{error}");
    assert_eq!(
        helm_calls(&fixture).last().unwrap(),
        "helm uninstall pixelmill --wait --timeout 300s -n pixelmill-local"
    );
    assert!(fixture.server.requests().is_empty(), "no smoke test of a release that never got ready");
}

#[test]
fn the_cluster_of_an_argocd_environment_is_refused() {
    let fixture = local_fixture("local-staging-context", Some(1));
    fixture.rule("kubectl config current-context", 0, "pixelmill-staging");
    let archive = oci_archive(&fixture);
    let (_, result) = deploy(&fixture, &["local", "--image-archive", &archive]);
    let error = result.unwrap_err();
    assert!(error.contains("step `preflight` failed"), "{error}");
    assert!(
        error.contains("the current context `pixelmill-staging` is the cluster of an Argo CD environment"),
        "{error}"
    );
    assert!(helm_calls(&fixture).is_empty());
}

#[test]
fn dry_run_builds_saves_names_loads_and_releases_with_placeholders() {
    let fixture = local_fixture("local-dry", None);
    fixture.uninstall("docker");
    let (ctx, result) = deploy(&fixture, &["local", "--dry-run"]);
    result.unwrap();
    let mut expected = vec![
        "$ buildah --version".to_owned(),
        "$ git --version".to_owned(),
        "$ kubectl version --client".to_owned(),
        "$ helm version --short".to_owned(),
        "$ curl --version".to_owned(),
        "$ git rev-parse --abbrev-ref HEAD".to_owned(),
        "$ git status --porcelain".to_owned(),
        "$ kubectl config current-context".to_owned(),
        "$ git rev-parse HEAD".to_owned(),
        "$ git rev-parse --short HEAD".to_owned(),
        "$ git rev-parse HEAD".to_owned(),
        "$ buildah bud --layers --file Dockerfile --tag 'pixelmill:<short-sha>' --label 'org.opencontainers.image.revision=<commit>' \
         --label org.opencontainers.image.source=https://github.com/pixelmill/pixelmill \
         --label org.opencontainers.image.created=<time> ."
            .to_owned(),
        "$ buildah push 'pixelmill:<short-sha>' oci-archive:<scratch>/image.tar".to_owned(),
        "$ tar -xf <scratch>/image.tar -C <scratch>/image-layout".to_owned(),
        "write <scratch>/image-layout/index.json: the manifest named localhost/pixelmill:<short-sha> and by its digest"
            .to_owned(),
        "$ tar -cf <scratch>/image-named.tar -C <scratch>/image-layout oci-layout index.json blobs".to_owned(),
        "$ kind load image-archive <scratch>/image-named.tar".to_owned(),
        format!("$ {HISTORY}"),
        format!("$ {UPGRADE} --set-string 'image.digest=sha256:<digest>' --wait --timeout 300s"),
        format!("$ {ROLLOUT}"),
        format!("$ {TERMINATING} 'jsonpath={{range .items[?(@.metadata.deletionTimestamp)]}}{{.metadata.name}}{{\"\\n\"}}{{end}}'"),
        "$ kubectl -n pixelmill-local get service pixelmill -o 'jsonpath={.spec.clusterIP}:{.spec.ports[?(@.name==\"http\")].port}'"
            .to_owned(),
    ];
    // The placeholder address is quoted where the URL is not already.
    let url = "http://<cluster-ip>:80";
    expected.extend(dry_smoke_lines(url).into_iter().map(|line| {
        line.replace(&format!(" {url}/readyz"), &format!(" '{url}/readyz'"))
            .replace(&format!(" {url}/v1/images"), &format!(" '{url}/v1/images'"))
    }));
    expected.push(
        "$ git tag --force --annotate 'verified/local/<commit>' --message 'sha256:<digest>' '<commit>'".to_owned(),
    );
    assert_eq!(commands(&ctx), expected);
    let calls: Vec<String> = fixture.calls();
    assert!(calls.is_empty(), "a dry run calls no tool: {calls:?}");
    assert_eq!(fixture.git(&["tag"]), "");
}

#[test]
fn the_gitops_commands_refuse_a_helm_environment_and_deploy_refuses_infra_for_it() {
    let fixture = Fixture::new("local-refused");
    let ctx = fixture.context();
    let error = crate::environment::Environment::load(&ctx, "local").unwrap_err();
    assert!(error.contains("local is released with Helm") && error.contains("only `deploy` takes it"), "{error}");
    let (_, result) = deploy(&fixture, &["local", "--infra"]);
    assert!(result.unwrap_err().contains("local has no infrastructure (--infra)"));
}
