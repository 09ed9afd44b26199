#!/usr/bin/env bash
# deploy/kubernetes against the Kubernetes API's own schemas, and against the
# service it deploys.
#   1. kubernetes-validate --strict (PyPI; the schemas of each Kubernetes
#      release's OpenAPI, in the wheel) for the oldest and newest releases we
#      support: an unknown field or a wrong type fails.
#   2. What a schema cannot see: the config in the ConfigMap is one this
#      fraud-detector accepts (--dump-config with it), the probes reach
#      /healthz and /readyz on http.listen's port, each pod's name is its
#      group.instance.id, the Secret lands where redis.password.file points,
#      the selectors match the pods, kustomization.yaml lists every file.
#   3. The validator itself fails a manifest with a misspelled field.
# The validator is installed once into a virtualenv under
# ~/.cache/fraud-detector (or $TEST_TOOLS_CACHE) from tests/kubernetes/requirements.txt.
# Usage: tests/kubernetes/kubernetes_test.sh BUILD_DIR
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
BUILD="$(cd "${1:-$root/build}" && pwd)"
manifests="$root/deploy/kubernetes"
versions=(1.30.0 1.37.0)
work="$(mktemp -d /tmp/fraud-k8s-XXXXXX)"
trap 'rm -rf "$work"' EXIT

requirements="$root/tests/kubernetes/requirements.txt"
venv="${TEST_TOOLS_CACHE:-$HOME/.cache/fraud-detector}/kubernetes-validate-$(sha256sum "$requirements" | cut -c1-12)"
if [ ! -x "$venv/bin/kubernetes-validate" ]; then
  rm -rf "$venv"
  /usr/bin/python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$requirements" || {
    rm -rf "$venv"; echo "FAIL: could not install kubernetes-validate from PyPI" >&2; exit 1; }
fi

resources=()
for f in "$manifests"/*.yaml; do
  [ "$(basename "$f")" = kustomization.yaml ] || resources+=("$f")
done
for v in "${versions[@]}"; do
  "$venv/bin/kubernetes-validate" --strict --quiet -k "$v" "${resources[@]}"
  echo "kubernetes-validate --strict -k $v: ${#resources[@]} files passed"
done

sed 's/livenessProbe:/livenesProbe:/' "$manifests/statefulset.yaml" >"$work/misspelled.yaml"
if "$venv/bin/kubernetes-validate" --strict --quiet "$work/misspelled.yaml" >"$work/bad.out" 2>&1; then
  echo "FAIL: the validator passed a misspelled field" >&2; exit 1
fi
grep -q livenesProbe "$work/bad.out" || { cat "$work/bad.out" >&2; exit 1; }

"$venv/bin/python" - "$manifests" "$work" "$BUILD/fraud-detector" <<'PY'
import os, subprocess, sys
import yaml
manifests, work, binary = sys.argv[1:4]
def fail(msg):
    sys.exit("FAIL: " + msg)
docs = {}
for name in os.listdir(manifests):
    with open(os.path.join(manifests, name)) as f:
        for doc in yaml.safe_load_all(f):
            docs[doc["kind"]] = doc
kust = docs.pop("Kustomization")
listed = set(kust["resources"])
files = {n for n in os.listdir(manifests) if n.endswith(".yaml") and n != "kustomization.yaml"}
if listed != files:
    fail(f"kustomization.yaml lists {sorted(listed)}, the directory has {sorted(files)}")
want = {"ConfigMap", "Secret", "StatefulSet", "Service", "PodDisruptionBudget"}
if set(docs) != want:
    fail(f"resources {sorted(docs)}, expected {sorted(want)}")

sts, cm, secret, svc, pdb = (docs[k] for k in
                             ("StatefulSet", "ConfigMap", "Secret", "Service", "PodDisruptionBudget"))
pod = sts["spec"]["template"]
labels = pod["metadata"]["labels"]
for what, selector in (("StatefulSet", sts["spec"]["selector"]["matchLabels"]),
                       ("Service", svc["spec"]["selector"]),
                       ("PodDisruptionBudget", pdb["spec"]["selector"]["matchLabels"])):
    if any(labels.get(k) != v for k, v in selector.items()):
        fail(f"the {what} selector {selector} does not match the pods' labels {labels}")
if sts["spec"]["serviceName"] != svc["metadata"]["name"]:
    fail("the StatefulSet's serviceName is not the Service")

container = pod["spec"]["containers"][0]
args = container["args"]
config_path = args[args.index("-c") + 1]
mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
conf_volume = next(n for n, v in volumes.items() if v.get("configMap", {}).get("name") == cm["metadata"]["name"])
if os.path.join(mounts[conf_volume], os.path.basename(config_path)) != config_path \
        or os.path.basename(config_path) not in cm["data"]:
    fail(f"-c {config_path} is not the ConfigMap's file")
conf = dict(line.split("=", 1) for line in cm["data"][os.path.basename(config_path)].splitlines()
            if line and not line.startswith("#"))

secret_volume = next(n for n, v in volumes.items()
                     if v.get("secret", {}).get("secretName") == secret["metadata"]["name"])
password_file = conf["redis.password.file"]
if os.path.dirname(password_file) != mounts[secret_volume] \
        or os.path.basename(password_file) not in secret["stringData"]:
    fail(f"redis.password.file {password_file} is not where the Secret is mounted")
if pod["spec"]["securityContext"].get("fsGroup") is None \
        or volumes[secret_volume]["secret"].get("defaultMode", 0o644) & 0o040 == 0:
    fail("the non-root service cannot read the Secret's file (fsGroup and a group-readable mode)")

port = int(conf["http.listen"].rsplit(":", 1)[1])
ports = {p["name"]: p["containerPort"] for p in container["ports"]}
for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
    get = container[probe]["httpGet"]
    if get["path"] != path or ports.get(get["port"], get["port"]) != port:
        fail(f"{probe} asks {get}, the service answers {path} on {port}")
if int(svc["metadata"]["annotations"]["prometheus.io/port"]) != port \
        or svc["metadata"]["annotations"]["prometheus.io/path"] != "/metrics":
    fail("the Service's Prometheus annotations do not name /metrics on http.listen's port")
env = {e["name"]: e for e in container["env"]}
if env.get("POD_NAME", {}).get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") != "metadata.name" \
        or env.get("FRAUD_KAFKA_CONSUMER_GROUP_INSTANCE_ID", {}).get("value") != "$(POD_NAME)":
    fail("each pod's name must be its kafka.consumer.group.instance.id")

# The service itself reads the ConfigMap's file (the password from a file, as mounted).
with open(f"{work}/redis-password", "w") as f:
    f.write(secret["stringData"][os.path.basename(password_file)] + "\n")
with open(f"{work}/fraud-detector.conf", "w") as f:
    f.write(cm["data"][os.path.basename(config_path)])
env_vars = dict(os.environ, FRAUD_KAFKA_CONSUMER_GROUP_INSTANCE_ID="fraud-detector-0")
out = subprocess.run([binary, "-c", f"{work}/fraud-detector.conf", "-X",
                      f"redis.password.file={work}/redis-password", "--dump-config"],
                     capture_output=True, text=True, env=env_vars)
if out.returncode != 0:
    fail(f"fraud-detector refuses the ConfigMap's config: {out.stderr.strip()}")
if "group.instance.id=fraud-detector-0" not in out.stdout:
    fail("the pod name did not reach librdkafka's group.instance.id")
print("structure: selectors, probes, config, secret and static membership agree")
PY
echo "kubernetes manifests OK"
