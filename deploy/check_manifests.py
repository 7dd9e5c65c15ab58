#!/usr/bin/python3
"""Checks that the deployment files parse and agree with the image and with the server.

Run by deploy/test_deploy.sh (make test-deploy):

  deploy/check_manifests.py --image-config CONFIG.json [--metrics METRICS.txt] [--promtool P]

CONFIG.json is the image's Docker config (`buildah inspect --type image`, .Docker.config):
its user, exposed ports, volume and environment are the truth the Compose file and the
Kubernetes manifests are compared with. METRICS.txt is a /metrics page scraped from the running
server: every flowvi_* name the Grafana dashboard and the alerting rules use must be on it.
Prints one line per check and exits 1 if any failed.
"""
import argparse
import json
import os
import re
import subprocess
import sys
import tempfile

import yaml

DEPLOY = os.path.dirname(os.path.abspath(__file__))


class Checker:
    def __init__(self):
        self.passed = 0
        self.failed = 0

    def check(self, ok, what, detail=""):
        if ok:
            self.passed += 1
            print(f"ok: {what}")
        else:
            self.failed += 1
            print(f"FAIL: {what}{': ' + detail if detail else ''}")
        return ok


def load_yaml_docs(path):
    with open(path) as f:
        return [d for d in yaml.safe_load_all(f) if d is not None]


def port_of(address):
    return int(address.rsplit(":", 1)[1])


def env_list_to_dict(env):
    out = {}
    for item in env or []:
        key, _, value = item.partition("=")
        out[key] = value
    return out


def image_facts(config):
    """The image's user, ports, data volume and listen ports, from its Docker config."""
    env = env_list_to_dict(config.get("Env"))
    user = config.get("User", "")
    uid, _, gid = user.partition(":")
    return {
        "uid": int(uid) if uid.isdigit() else None,
        "gid": int(gid) if gid.isdigit() else None,
        "ports": sorted(int(p.split("/")[0]) for p in (config.get("ExposedPorts") or {})),
        "volumes": sorted(config.get("Volumes") or {}),
        "env": env,
        "healthcheck": (config.get("Healthcheck") or {}).get("Test") or [],
    }


def check_image(c, img):
    c.check(img["uid"] is not None and img["uid"] != 0, "image runs as a numeric non-root user",
            f"User={img['uid']}:{img['gid']}")
    c.check(img["volumes"] == [img["env"].get("FLOWVI_DATA_DIR")],
            "image's volume is its FLOWVI_DATA_DIR", f"{img['volumes']} vs {img['env']}")
    listen = [port_of(img["env"].get(k, ":0")) for k in ("FLOWVI_LISTEN", "FLOWVI_METRICS_LISTEN")]
    c.check(sorted(listen) == img["ports"], "image EXPOSEs exactly its gRPC and metrics ports",
            f"EXPOSE {img['ports']}, listen {listen}")
    c.check(all(img["env"].get(k, "").startswith("0.0.0.0:")
                for k in ("FLOWVI_LISTEN", "FLOWVI_METRICS_LISTEN")),
            "image listens on all interfaces")
    c.check(any("flowvi health" in part for part in img["healthcheck"]),
            "image has a HEALTHCHECK running `flowvi health`", str(img["healthcheck"]))


def check_k8s(c, img):
    k8s = os.path.join(DEPLOY, "k8s")
    docs = {}
    for name in sorted(os.listdir(k8s)):
        if name.endswith(".yaml"):
            for d in load_yaml_docs(os.path.join(k8s, name)):
                docs.setdefault(d["kind"], []).append(d)
    kust = docs.get("Kustomization", [{}])[0]
    c.check(all(os.path.exists(os.path.join(k8s, r)) for r in kust.get("resources", [])),
            "k8s: every kustomization resource exists")
    sts = docs["StatefulSet"][0]
    pod = sts["spec"]["template"]
    spec = pod["spec"]
    ctr = spec["containers"][0]
    ports = {p["name"]: p["containerPort"] for p in ctr["ports"]}
    c.check(sorted(ports.values()) == img["ports"], "k8s: container ports are the image's",
            f"{ports} vs {img['ports']}")
    env = {e["name"]: e.get("value") for e in ctr.get("env", [])}
    c.check(port_of(env.get("FLOWVI_LISTEN", ":0")) == ports.get("grpc")
            and port_of(env.get("FLOWVI_METRICS_LISTEN", ":0")) == ports.get("metrics"),
            "k8s: FLOWVI_LISTEN/FLOWVI_METRICS_LISTEN use the grpc/metrics ports", str(env))
    c.check(env.get("FLOWVI_INSECURE") == "1", "k8s: FLOWVI_INSECURE=1 (plain gRPC, for now)")
    sc = spec.get("securityContext", {})
    c.check(sc.get("runAsUser") == img["uid"] and sc.get("runAsGroup") == img["gid"]
            and sc.get("fsGroup") == img["gid"] and sc.get("runAsNonRoot") is True,
            "k8s: runs as the image's uid/gid, non-root, fsGroup for the volume", str(sc))
    csc = ctr.get("securityContext", {})
    c.check(csc.get("readOnlyRootFilesystem") is True
            and csc.get("allowPrivilegeEscalation") is False
            and csc.get("capabilities", {}).get("drop") == ["ALL"],
            "k8s: read-only root, no privilege escalation, no capabilities", str(csc))
    mounts = {m["name"]: m["mountPath"] for m in ctr.get("volumeMounts", [])}
    claims = [t["metadata"]["name"] for t in sts["spec"].get("volumeClaimTemplates", [])]
    c.check("data" in claims and [mounts.get("data")] == img["volumes"]
            and env.get("FLOWVI_DATA_DIR") == mounts.get("data"),
            "k8s: the persistent volume is mounted at the image's data directory",
            f"{mounts} {claims} {img['volumes']}")
    probes = [ctr.get(p) for p in ("startupProbe", "readinessProbe", "livenessProbe")]
    c.check(all(p and p.get("grpc", {}).get("port") == ports.get("grpc") for p in probes),
            "k8s: startup/readiness/liveness are native gRPC probes on the gRPC port")
    res = ctr.get("resources", {})
    c.check(all(k in res.get(kind, {}) for kind in ("requests", "limits") for k in ("cpu", "memory")),
            "k8s: cpu and memory requests and limits", str(res))
    ann = pod["metadata"].get("annotations", {})
    c.check(ann.get("prometheus.io/scrape") == "true"
            and ann.get("prometheus.io/port") == str(ports.get("metrics")),
            "k8s: Prometheus scrape annotations name the metrics port", str(ann))
    config = docs["ConfigMap"][0]["data"]
    grace = int(config.get("FLOWVI_SHUTDOWN_GRACE_S", "10"))
    c.check(spec.get("terminationGracePeriodSeconds", 30) > grace,
            "k8s: termination grace period is longer than the server's drain",
            f"{spec.get('terminationGracePeriodSeconds')} vs {grace}")
    c.check(all(k.startswith("FLOWVI_") for k in config), "k8s: ConfigMap keys are FLOWVI_*")
    labels = pod["metadata"]["labels"]
    for svc in docs["Service"]:
        name = svc["metadata"]["name"]
        sel = svc["spec"]["selector"]
        c.check(all(labels.get(k) == v for k, v in sel.items()),
                f"k8s: Service {name} selects the StatefulSet's pods")
        c.check(all(p["targetPort"] in ports or p["targetPort"] in ports.values()
                    for p in svc["spec"]["ports"]),
                f"k8s: Service {name} targets container ports that exist")
    c.check(sts["spec"]["serviceName"] in [s["metadata"]["name"] for s in docs["Service"]
                                           if s["spec"].get("clusterIP") == "None"],
            "k8s: the StatefulSet's serviceName is a headless Service")


def check_compose(c, img):
    compose = load_yaml_docs(os.path.join(DEPLOY, "docker-compose.yml"))[0]
    services = compose["services"]
    flowvi = services["flowvi"]
    targets = [v.split(":")[1] for v in flowvi.get("volumes", [])]
    c.check(targets == img["volumes"], "compose: the named volume is the image's data directory",
            f"{targets}")
    published = sorted(int(p.rsplit(":", 1)[1]) for p in flowvi.get("ports", []))
    c.check(published == img["ports"], "compose: publishes the image's ports", f"{published}")
    c.check(all(p.startswith("127.0.0.1:") for p in flowvi.get("ports", [])),
            "compose: published ports bound to loopback")
    env = flowvi.get("environment", {})
    c.check(env.get("FLOWVI_INSECURE") == "1", "compose: FLOWVI_INSECURE=1 (plain gRPC, for now)")
    c.check(port_of(env.get("FLOWVI_METRICS_LISTEN", ":0")) in img["ports"]
            and port_of(env.get("FLOWVI_LISTEN", ":0")) in img["ports"],
            "compose: listen addresses use the image's ports")
    for name in ("prometheus", "grafana"):
        for v in services[name].get("volumes", []):
            src = v.split(":")[0]
            if src.startswith("."):
                c.check(os.path.exists(os.path.join(DEPLOY, src)),
                        f"compose: {name} mounts {src}, which exists")
    prom = load_yaml_docs(os.path.join(DEPLOY, "prometheus", "prometheus.yml"))[0]
    scrape = [t for job in prom["scrape_configs"] for sc in job.get("static_configs", [])
              for t in sc["targets"]]
    metrics_port = port_of(env.get("FLOWVI_METRICS_LISTEN", ":0"))
    c.check(scrape == [f"flowvi:{metrics_port}"],
            "prometheus.yml scrapes the compose service flowvi on its metrics port", str(scrape))
    ds = load_yaml_docs(os.path.join(DEPLOY, "grafana", "provisioning", "datasources",
                                      "prometheus.yml"))[0]["datasources"][0]
    c.check(ds["url"] == "http://prometheus:9090" and "prometheus" in services,
            "grafana's data source is the compose Prometheus")
    return ds["uid"]


def dashboard_exprs(datasource_uid, c):
    exprs = []
    dash_dir = os.path.join(DEPLOY, "grafana", "dashboards")
    for name in sorted(os.listdir(dash_dir)):
        with open(os.path.join(dash_dir, name)) as f:
            dash = json.load(f)
        uids = {p["datasource"]["uid"] for p in dash["panels"]}
        c.check(uids == {datasource_uid}, f"grafana: {name} uses the provisioned data source",
                str(uids))
        exprs += [t["expr"] for p in dash["panels"] for t in p["targets"]]
    return exprs


def alert_exprs():
    rules = load_yaml_docs(os.path.join(DEPLOY, "prometheus", "alerts.yml"))[0]
    return [r["expr"] for g in rules["groups"] for r in g["rules"]]


def check_promql(c, exprs, promtool):
    """promtool parses the dashboard's queries (Grafana's $__ variables given a value)."""
    rules = {"groups": [{"name": "dashboard", "rules": [
        {"record": f"flowvi_dashboard:query{i}", "expr": e.replace("$__rate_interval", "1m")}
        for i, e in enumerate(exprs)]}]}
    with tempfile.NamedTemporaryFile("w", suffix=".yml") as f:
        yaml.safe_dump(rules, f)
        f.flush()
        r = subprocess.run([promtool, "check", "rules", f.name], capture_output=True, text=True)
    c.check(r.returncode == 0, f"grafana: promtool parses all {len(exprs)} dashboard queries",
            r.stdout + r.stderr)


def check_metric_names(c, exprs, metrics_text):
    exposed = set(re.findall(r"^# TYPE (\S+) ", metrics_text, re.M))
    used = {n for e in exprs for n in re.findall(r"\bflowvi_[a-z_]+\b", e)}
    # A histogram's series are NAME_bucket, NAME_sum and NAME_count of the family NAME.
    missing = sorted(n for n in used
                     if n not in exposed and re.sub(r"_(bucket|sum|count)$", "", n) not in exposed)
    c.check(used and not missing,
            f"the dashboard and alerts use only metrics the server exposes ({len(used)} names)",
            f"not exposed: {missing}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--image-config", required=True)
    ap.add_argument("--metrics")
    ap.add_argument("--promtool", default="promtool")
    args = ap.parse_args()
    c = Checker()
    with open(args.image_config) as f:
        img = image_facts(json.load(f))
    check_image(c, img)
    check_k8s(c, img)
    uid = check_compose(c, img)
    exprs = dashboard_exprs(uid, c)
    check_promql(c, exprs, args.promtool)
    if args.metrics:
        with open(args.metrics) as f:
            check_metric_names(c, exprs + alert_exprs(), f.read())
    print(f"check_manifests: {c.passed} passed, {c.failed} failed")
    return 1 if c.failed else 0


if __name__ == "__main__":
    sys.exit(main())
