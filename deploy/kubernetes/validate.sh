#!/usr/bin/env bash
# Validates the Kubernetes manifests and deploy/compose.yaml offline, against JSON
# schemas bundled in pinned PyPI packages: kubernetes-validate (the Kubernetes API's
# schemas, per version) and check-jsonschema (the Compose spec's schema).
#
#   deploy/kubernetes/validate.sh [MANIFEST_DIR [COMPOSE_FILE]]
#
# Defaults: this directory and deploy/compose.yaml. Environment: KUBE_VERSION
# (default 1.30.0, the oldest version the manifests target), VALIDATE_VENV (where the
# validators are installed; default under $TMPDIR). Exits non-zero on any problem.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
manifests="$(cd "${1:-$here}" && pwd)"
compose="${2:-$here/../compose.yaml}"
kube_version="${KUBE_VERSION:-1.30.0}"

# Pinned, with their dependencies, so a new release cannot change the verdict.
requirements="kubernetes-validate==1.37.0
check-jsonschema==0.39.0
attrs==26.1.0
certifi==2026.10.19.post1
charset-normalizer==3.5.3
click==8.5.1
idna==3.20
importlib_resources==7.1.0
jsonschema==4.26.0
jsonschema-specifications==2025.9.1
packaging==26.4
PyYAML==6.0.4
referencing==0.37.0
regress==2026.9.1
requests==2.34.2
rpds-py==2026.9.1
ruamel.yaml==0.19.1
typing_extensions==4.16.0
urllib3==2.8.0"
stamp="$(printf '%s' "$requirements" | sha256sum | cut -c1-12)"
venv="${VALIDATE_VENV:-${TMPDIR:-/tmp}/assent-deploy-validate-$stamp}"

if [[ ! -x "$venv/bin/kubernetes-validate" || ! -x "$venv/bin/check-jsonschema" ]]; then
  echo "installing validators into $venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r <(printf '%s\n' "$requirements")
fi

failed=0
fail() { echo "FAIL: $*" >&2; failed=1; }

# 1. Every manifest against the API schemas. --strict rejects unknown fields; a kind
#    with no schema (a typo, or a CRD) is only a warning there, so it fails here.
shopt -s nullglob
files=()
for f in "$manifests"/*.yaml; do
  [[ "$(basename "$f")" == kustomization.yaml ]] || files+=("$f")
done
if ((${#files[@]} == 0)); then
  fail "no manifests in $manifests"
else
  set +e
  out="$("$venv/bin/kubernetes-validate" --strict -k "$kube_version" "${files[@]}" 2>&1)"
  rc=$?
  set -e
  printf '%s\n' "$out"
  ((rc == 0)) || fail "kubernetes-validate exited $rc"
  if grep -q '^WARN' <<<"$out"; then fail "kubernetes-validate warned (no schema?)"; fi
fi

# 2. What the schemas cannot see: the kustomization lists every manifest meant to be
#    applied together, each resource names the namespace, the Deployments keep the
#    settings this setup depends on.
"$venv/bin/python" - "$manifests" <<'PY' || fail "manifest checks"
import pathlib, sys, yaml

root = pathlib.Path(sys.argv[1])
problems = []
# Applied on their own: the Secret by hand, the Job before each upgrade.
apart = {"kustomization.yaml", "secret.example.yaml", "migrate-job.yaml"}
kustomization = yaml.safe_load((root / "kustomization.yaml").read_text())
listed = kustomization.get("resources") or []
for name in listed:
    if not (root / name).is_file():
        problems.append(f"kustomization.yaml lists {name}, which does not exist")
for path in sorted(root.glob("*.yaml")):
    if path.name not in apart and path.name not in listed:
        problems.append(f"{path.name} is not listed in kustomization.yaml")

docs = {}
for path in sorted(root.glob("*.yaml")):
    if path.name == "kustomization.yaml":
        continue
    for doc in yaml.safe_load_all(path.read_text()):
        if not doc:
            continue
        kind, meta = doc.get("kind"), doc.get("metadata", {})
        docs[(kind, meta.get("name"))] = doc
        if kind != "Namespace" and meta.get("namespace") != "assent":
            problems.append(f"{path.name}: {kind}/{meta.get('name')} is not in namespace assent")

def container(kind, name):
    doc = docs.get((kind, name))
    if doc is None:
        problems.append(f"missing {kind}/{name}")
        return None, None
    pod = doc["spec"]["template"]["spec"]
    return pod, pod["containers"][0]

expected = {"assent-api": "api", "assent-worker": "worker", "assent-bot": "bot"}
for name, role in expected.items():
    pod, c = container("Deployment", name)
    if c is None:
        continue
    if c.get("args") != ["serve", "--role", role]:
        problems.append(f"{name}: args are {c.get('args')}")
    if pod.get("automountServiceAccountToken") is not False:
        problems.append(f"{name}: mounts a service-account token")
    sc = c.get("securityContext", {})
    if not (sc.get("readOnlyRootFilesystem") and sc.get("capabilities", {}).get("drop") == ["ALL"]):
        problems.append(f"{name}: root filesystem writable or capabilities kept")
    if not pod.get("securityContext", {}).get("runAsNonRoot"):
        problems.append(f"{name}: runAsNonRoot unset")
    env = {e["name"]: e for e in c.get("env", [])}
    key = env.get("ASSENT_MASTER_KEY", {}).get("valueFrom", {}).get("secretKeyRef", {})
    if not key or key.get("optional"):
        problems.append(f"{name}: ASSENT_MASTER_KEY must come from a required Secret key")
    if "limits" not in c.get("resources", {}):
        problems.append(f"{name}: no resource limits")
    # Every role serves /healthz, /readyz, /metrics on ASSENT_OPS_LISTEN (port ops).
    ports = {p.get("name"): p.get("containerPort") for p in c.get("ports", [])}
    if ports.get("ops") != 9090:
        problems.append(f"{name}: no container port ops 9090")
    notes = docs[("Deployment", name)]["spec"]["template"].get("metadata", {}).get("annotations") or {}
    if notes.get("prometheus.io/scrape") != "true" or notes.get("prometheus.io/port") != "9090":
        problems.append(f"{name}: pod template lacks the prometheus.io scrape annotations")
    if "lifecycle" in c:
        problems.append(f"{name}: has a lifecycle hook (every role stops on SIGTERM)")
    if role != "api":
        for probe, path in [("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")]:
            get = c.get(probe, {}).get("httpGet", {})
            if get.get("path") != path or get.get("port") != "ops":
                problems.append(f"{name}: {probe} is not GET {path} on port ops")
    if role == "api":
        listen = env.get("ASSENT_DB_LISTEN_URL", {}).get("valueFrom", {}).get("secretKeyRef")
        if not listen:
            problems.append(f"{name}: ASSENT_DB_LISTEN_URL must come from a Secret key")
bot = docs.get(("Deployment", "assent-bot"), {}).get("spec", {})
if bot.get("replicas") != 1 or bot.get("strategy", {}).get("type") != "Recreate":
    problems.append("assent-bot: must be 1 replica with strategy Recreate")
config = docs.get(("ConfigMap", "assent-config"), {}).get("data", {})
if config.get("ASSENT_DB_STATEMENT_CACHE") != "false":
    problems.append("assent-config: ASSENT_DB_STATEMENT_CACHE must be \"false\" (PgBouncer)")
if not str(config.get("ASSENT_OPS_LISTEN", "")).endswith(":9090"):
    problems.append("assent-config: ASSENT_OPS_LISTEN must listen on port 9090")
# Port 9090 (no token on /metrics) only from the monitoring namespace.
for (kind, pname), doc in docs.items():
    if kind != "NetworkPolicy":
        continue
    for rule in doc["spec"].get("ingress") or []:
        if any(p.get("port") == 9090 for p in rule.get("ports") or []):
            sources = rule.get("from") or []
            if not sources or any("namespaceSelector" not in f for f in sources):
                problems.append(f"NetworkPolicy/{pname}: admits port 9090 from outside a namespace selector")
if not any(
    kind == "NetworkPolicy"
    and any(any(p.get("port") == 9090 for p in r.get("ports") or []) for r in doc["spec"].get("ingress") or [])
    for (kind, _), doc in docs.items()
):
    problems.append("no NetworkPolicy admits port 9090 (Prometheus)")
_, job = container("Job", "assent-migrate")
if job is not None and job.get("args") != ["migrate"]:
    problems.append(f"assent-migrate: args are {job.get('args')}")

for p in problems:
    print(f"FAIL: {p}", file=sys.stderr)
print(f"manifest checks: {len(docs)} resources, {len(problems)} problem(s)")
sys.exit(1 if problems else 0)
PY

# 3. Compose: the Compose spec's schema, then the shape this setup relies on.
if [[ -f "$compose" ]]; then
  "$venv/bin/check-jsonschema" --builtin-schema vendor.compose-spec "$compose" \
    || fail "compose schema"
  "$venv/bin/python" - "$compose" <<'PY' || fail "compose checks"
import sys, yaml

compose = yaml.safe_load(open(sys.argv[1]))
services = compose.get("services", {})
problems = []
for name in ["postgres", "pgbouncer", "migrate", "api", "proxy", "worker", "bot"]:
    if name not in services:
        problems.append(f"no service {name}")
for name in ["api", "worker", "bot"]:
    s = services.get(name, {})
    env = s.get("environment") or {}
    if "@pgbouncer:6432/" not in str(env.get("ASSENT_DATABASE_URL")):
        problems.append(f"{name}: ASSENT_DATABASE_URL does not go through pgbouncer:6432")
    if str(env.get("ASSENT_DB_STATEMENT_CACHE")).lower() != "false":
        problems.append(f"{name}: ASSENT_DB_STATEMENT_CACHE is not false")
    if (s.get("depends_on") or {}).get("migrate", {}).get("condition") != "service_completed_successfully":
        problems.append(f"{name}: does not wait for migrate to complete")
    if s.get("command", [])[:3] != ["serve", "--role", name]:
        problems.append(f"{name}: command is {s.get('command')}")
    if "stop_signal" in s:
        problems.append(f"{name}: sets stop_signal (every role stops on SIGTERM)")
    if not str(env.get("ASSENT_OPS_LISTEN", "")).endswith(":9090"):
        problems.append(f"{name}: ASSENT_OPS_LISTEN is not on port 9090")
    test = " ".join((s.get("healthcheck") or {}).get("test") or [])
    port = "8080" if name == "api" else "9090"
    if f"/dev/tcp/127.0.0.1/{port}" not in test or "/readyz" not in test:
        problems.append(f"{name}: healthcheck does not ask /readyz on port {port}")
if "@postgres:5432/" not in str((services.get("api", {}).get("environment") or {}).get("ASSENT_DB_LISTEN_URL")):
    problems.append("api: ASSENT_DB_LISTEN_URL does not go straight to postgres:5432")
if services.get("api", {}).get("ports"):
    problems.append("api: publishes a host port (replicas would clash); the proxy does")
if (services.get("bot", {}).get("deploy") or {}).get("replicas", 1) != 1:
    problems.append("bot: more than one replica")
if services.get("migrate", {}).get("command") != ["migrate"]:
    problems.append("migrate: command is not [migrate]")
for p in problems:
    print(f"FAIL: {p}", file=sys.stderr)
print(f"compose checks: {len(services)} services, {len(problems)} problem(s)")
sys.exit(1 if problems else 0)
PY
else
  fail "no compose file at $compose"
fi

# 4. The init script the postgres service mounts parses as sh.
init="$(dirname "$compose")/postgres-init.sh"
if [[ -f "$init" ]]; then sh -n "$init" || fail "postgres-init.sh does not parse"; fi

if ((failed)); then
  echo "validate.sh: FAILED" >&2
  exit 1
fi
echo "validate.sh: all manifests valid (Kubernetes $kube_version, Compose spec)"
