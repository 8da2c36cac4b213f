"""test_ecs.py -- deploy/ecs checked offline against the AWS API models and against the daemons' sources.

Every file under deploy/ecs is the --cli-input-json of one AWS CLI call. botocore (installed in .venv
by the setup) ships the API models the CLI uses: each file is validated against the input shape of
its operation (unknown fields, missing required ones, wrong types), and enum values are checked on
top, which botocore's validator leaves to the server. Then what ECS cannot know: every environment
variable is one the daemon reads (parsed from its config table in services/<d>/main.c and
SVC_CFG_COMMON in libs/svc/svc.h), secrets come by ARN, logs never block, the health check runs
`<daemon> --healthcheck`, sizes are Fargate's, and each queue scaled on is one the daemon consumes.
"""
import copy
import json
import os
import re
import sys

import botocore.session
import pytest
from botocore.validate import ParamValidator

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
ECS_DIR = os.path.join(ROOT, "deploy", "ecs")
DAEMONS = ["gateway", "auth", "resize-image", "publication", "notification", "search"]

# Variables of a daemon's table deliberately left out of its task definition, and why. Anything else
# the daemon reads must be set (environment or secret), so a variable added to a daemon's table fails
# this test until someone decides its production value.
UNSET = {
    "gateway": {"MEDIA_DIR": "media are in S3 (resize-image MEDIA_STORE=s3): the gateway serves no /media/"},
    "resize-image": {
        "MEDIA_DIR": "MEDIA_STORE=s3",
        "AWS_SESSION_TOKEN": "static keys of an IAM user: the daemon does not read ECS task-role credentials",
    },
}

# Queues each daemon is scaled on by depth (deploy/ecs/README.md "Autoscaling"); each must be named in
# services/<d>/README.md. The gateway consumes no queue: CPU only.
QUEUE_POLICIES = {
    "gateway": set(),
    "auth": {"auth.rpc"},
    "resize-image": {"resize-image.rpc"},
    "publication": {"publication.fanout", "publication.events"},
    "notification": {"notification.events", "notification.push"},
    "search": {"search.events"},
}

# Fargate's task sizes (Linux): cpu units -> memory MiB allowed.
FARGATE_SIZES = {
    256: {512, 1024, 2048},
    512: set(range(1024, 4097, 1024)),
    1024: set(range(2048, 8193, 1024)),
    2048: set(range(4096, 16385, 1024)),
    4096: set(range(8192, 30721, 1024)),
    8192: set(range(16384, 61441, 4096)),
    16384: set(range(32768, 122881, 8192)),
}

SECRET_ARN = re.compile(
    r"^arn:aws:(secretsmanager:[a-z0-9-]+:\d{12}:secret:[A-Za-z0-9/_+=.@-]+(:[A-Za-z0-9_]*:[A-Za-z0-9_-]*:[A-Za-z0-9-]*)?"
    r"|ssm:[a-z0-9-]+:\d{12}:parameter/[A-Za-z0-9/_.-]+)$"
)

_session = botocore.session.get_session()
ECS_MODEL = _session.get_service_model("ecs")
AAS_MODEL = _session.get_service_model("application-autoscaling")


def load(rel):
    with open(os.path.join(ECS_DIR, rel)) as f:
        return json.load(f)


def task_definition(d):
    return load(f"task-definitions/{d}.json")


def daemon_container(td, d):
    [c] = [c for c in td["containerDefinitions"] if c["name"] == d]
    return c


def autoscaling_files(d):
    folder = os.path.join(ECS_DIR, "autoscaling", d)
    return sorted(f for f in os.listdir(folder) if f.endswith(".json"))


def every_file():
    """(relative path, operation model) of every JSON file under deploy/ecs."""
    out = []
    for d in DAEMONS:
        out.append((f"task-definitions/{d}.json", ECS_MODEL.operation_model("RegisterTaskDefinition")))
        out.append((f"services/{d}.json", ECS_MODEL.operation_model("CreateService")))
        for f in autoscaling_files(d):
            op = "RegisterScalableTarget" if f == "scalable-target.json" else "PutScalingPolicy"
            out.append((f"autoscaling/{d}/{f}", AAS_MODEL.operation_model(op)))
    return out


# ================================================================ validation against the API models


def enum_errors(value, shape, path="$"):
    """Values outside an enum anywhere in value (botocore's validator does not check enums)."""
    errors = []
    if shape.type_name == "structure" and isinstance(value, dict):
        for k, v in value.items():
            if k in shape.members:
                errors += enum_errors(v, shape.members[k], f"{path}.{k}")
    elif shape.type_name == "list" and isinstance(value, list):
        for i, v in enumerate(value):
            errors += enum_errors(v, shape.member, f"{path}[{i}]")
    elif shape.type_name == "map" and isinstance(value, dict):
        for k, v in value.items():
            errors += enum_errors(v, shape.value, f"{path}.{k}")
    elif shape.type_name == "string" and shape.enum and value not in shape.enum:
        errors.append(f"{path}: {value!r} is not one of {shape.enum}")
    return errors


def model_errors(params, operation):
    """Everything wrong with params as the input of operation, as text ('' when valid)."""
    report = ParamValidator().validate(params, operation.input_shape)
    text = report.generate_report() if report.has_errors() else ""
    return "\n".join(filter(None, [text] + enum_errors(params, operation.input_shape)))


def test_every_daemon_has_its_files():
    for d in DAEMONS:
        assert os.path.isfile(os.path.join(ECS_DIR, "task-definitions", f"{d}.json")), d
        assert os.path.isfile(os.path.join(ECS_DIR, "services", f"{d}.json")), d
        files = autoscaling_files(d)
        assert "scalable-target.json" in files and "policy-cpu.json" in files, (d, files)
    # and nothing else lies around that no test reads
    known = {rel for rel, _ in every_file()}
    for base, _, files in os.walk(ECS_DIR):
        for f in files:
            rel = os.path.relpath(os.path.join(base, f), ECS_DIR)
            assert rel in known or rel == "README.md", f"deploy/ecs/{rel}: not a file of a known AWS CLI call"


@pytest.mark.parametrize("rel,operation", every_file(), ids=[rel for rel, _ in every_file()])
def test_file_matches_the_api_model(rel, operation):
    errors = model_errors(load(rel), operation)
    assert errors == "", f"deploy/ecs/{rel} as {operation.name}:\n{errors}"


def test_validator_catches_a_misspelled_field():
    td = task_definition("gateway")
    op = ECS_MODEL.operation_model("RegisterTaskDefinition")
    assert model_errors(td, op) == ""
    bad = copy.deepcopy(td)
    c = daemon_container(bad, "gateway")
    c["healthcheck"] = c.pop("healthCheck")
    assert 'Unknown parameter in containerDefinitions[0]: "healthcheck"' in model_errors(bad, op)


def test_validator_catches_a_missing_field_a_wrong_type_and_a_bad_enum():
    op = ECS_MODEL.operation_model("RegisterTaskDefinition")
    bad = task_definition("auth")
    del bad["family"]
    bad["containerDefinitions"][0]["stopTimeout"] = "30"
    bad["networkMode"] = "awsvpc2"
    errors = model_errors(bad, op)
    assert 'Missing required parameter in input: "family"' in errors
    assert "Invalid type for parameter containerDefinitions[0].stopTimeout" in errors
    assert "$.networkMode: 'awsvpc2' is not one of" in errors

    pol = load("autoscaling/publication/policy-publication.fanout.json")
    pol["TargetTrackingScalingPolicyConfiguration"]["CustomizedMetricSpecification"]["Metrics"][0][
        "MetricStat"]["Stat "] = "Average"
    assert "Unknown parameter" in model_errors(pol, AAS_MODEL.operation_model("PutScalingPolicy"))


# ================================================================ the daemons' own configuration


def config_variables(d):
    """Names the daemon reads: {name: cfg type}, plus NAME_FILE for CFG_SECRET entries."""
    with open(os.path.join(ROOT, "services", d, "main.c")) as f:
        src = f.read()
    m = re.search(r"cfg_var_t\s+\w+\[\]\s*=\s*\{(.*?)\n\};", src, re.S)
    assert m, f"services/{d}/main.c: no cfg_var_t table"
    table = m.group(1)
    entry = re.compile(r'\{\s*"([A-Z][A-Z0-9_]*)",\s*CFG_([A-Z]+)')
    names = dict(entry.findall(table))
    if "SVC_CFG_COMMON(" in table:
        with open(os.path.join(ROOT, "libs", "svc", "svc.h")) as f:
            svc = f.read().replace("\\\n", " ")  # the macro's line continuations
        macro = re.search(r"#define SVC_CFG_COMMON\(.*?\n\n", svc, re.S)
        assert macro, "libs/svc/svc.h: no SVC_CFG_COMMON"
        names.update(entry.findall(macro.group(0)))
        assert {"AMQP_URL", "LOG_LEVEL", "ADMIN_LISTEN", "WORKERS"} <= set(names)
    assert len(names) >= 5, f"services/{d}/main.c: the table did not parse ({names})"
    for n, t in list(names.items()):
        if t == "SECRET":
            names[n + "_FILE"] = "SECRET_FILE"
    return names


def set_names(container):
    return [e["name"] for e in container.get("environment", [])] + [s["name"] for s in container.get("secrets", [])]


@pytest.mark.parametrize("d", DAEMONS)
def test_environment_is_what_the_daemon_reads(d):
    known = config_variables(d)
    names = set_names(daemon_container(task_definition(d), d))
    assert len(names) == len(set(names)), f"{d}: a variable set twice: {sorted(names)}"
    unknown = sorted(set(names) - set(known))
    assert not unknown, f"{d}: not read by services/{d}/main.c (typo?): {unknown}"
    # Every variable is decided: set, or left out on purpose (UNSET). Either form of a secret counts.
    decided = set(names) | set(UNSET.get(d, {}))
    undecided = sorted(
        n for n, t in known.items()
        if t != "SECRET_FILE" and n not in decided and not (t == "SECRET" and n + "_FILE" in decided)
    )
    assert not undecided, f"{d} reads {undecided}: set them in task-definitions/{d}.json or add them to UNSET"
    assert not set(UNSET.get(d, {})) & set(names), f"{d}: in UNSET and set"


def test_environment_check_catches_a_typo(monkeypatch):
    td = task_definition("gateway")
    daemon_container(td, "gateway")["environment"].append({"name": "GATEWAY_LISTENN", "value": "0.0.0.0:1"})
    monkeypatch.setattr(sys.modules[__name__], "task_definition", lambda d: td)
    with pytest.raises(AssertionError, match="GATEWAY_LISTENN"):
        test_environment_is_what_the_daemon_reads("gateway")


# ================================================================ task definitions


@pytest.mark.parametrize("d", DAEMONS)
def test_task_definition(d):
    td = task_definition(d)
    assert td["family"] == f"photo-{d}"
    assert td["networkMode"] == "awsvpc" and td["requiresCompatibilities"] == ["FARGATE"]
    assert td["runtimePlatform"] == {"operatingSystemFamily": "LINUX", "cpuArchitecture": "X86_64"}
    cpu, mem = int(td["cpu"]), int(td["memory"])
    assert mem in FARGATE_SIZES.get(cpu, set()), f"{d}: {cpu} CPU units with {mem} MiB is not a Fargate size"
    for role in ("executionRoleArn", "taskRoleArn"):
        assert re.match(r"^arn:aws:iam::\d{12}:role/[\w+=,.@-]+$", td[role]), (d, role)

    c = daemon_container(td, d)
    assert c["essential"] is True
    assert re.match(rf"^\d{{12}}\.dkr\.ecr\.[a-z0-9-]+\.amazonaws\.com/photo/{d}:[\w.-]+$", c["image"]), c["image"]
    assert c["entryPoint"] == [f"/usr/local/bin/{d}"]
    hc = c["healthCheck"]
    assert hc["command"] == ["CMD", f"/usr/local/bin/{d}", "--healthcheck"]
    assert 5 <= hc["interval"] <= 300 and 2 <= hc["timeout"] <= 60 and 1 <= hc["retries"] <= 10
    assert 0 <= hc["startPeriod"] <= 300
    # DESIGN: SIGTERM -> exit within 25 s; Fargate kills at stopTimeout (at most 120 s).
    assert 30 <= c["stopTimeout"] <= 120
    assert c["readonlyRootFilesystem"] is True

    env = {e["name"]: e["value"] for e in c.get("environment", [])}
    ports = {p["containerPort"] for p in c["portMappings"]}
    if d == "gateway":
        assert {8080, 8443} <= ports
        assert env["GATEWAY_LISTEN"] == "0.0.0.0:8080" and env["GATEWAY_TLS_LISTEN"] == "0.0.0.0:8443"
        assert env["GATEWAY_TRUSTED_PROXIES"] == "1"  # behind the ALB
        assert env["GATEWAY_DEBUG_ROUTES"] == "false"
        assert any(u["name"] == "nofile" and u["softLimit"] >= 65536 for u in c["ulimits"])
    else:
        host, port = env["ADMIN_LISTEN"].rsplit(":", 1)
        assert host == "0.0.0.0" and int(port) in ports, f"{d}: the admin listener must be reachable"
    if d == "search":
        assert td["ephemeralStorage"]["sizeInGiB"] >= 21
        assert hc["startPeriod"] == 300  # the index is built at start (README "Health checks")
        index = env["SEARCH_INDEX_DIR"]
        assert any(m["containerPath"] == index and not m.get("readOnly") for m in c["mountPoints"])
    if d == "resize-image":
        assert env["MEDIA_STORE"] == "s3" and env["MEDIA_S3_BUCKET"] and env["MEDIA_PUBLIC_URL"].startswith("https://")

    for container in td["containerDefinitions"]:
        log = container["logConfiguration"]
        assert log["logDriver"] == "awslogs", container["name"]
        opts = log["options"]
        assert opts["mode"] == "non-blocking", container["name"]
        assert re.match(r"^\d+[kmg]$", opts["max-buffer-size"]), container["name"]
        assert opts["awslogs-group"] == f"/ecs/photo/{d}" and opts["awslogs-region"] and opts["awslogs-stream-prefix"]
        for s in container.get("secrets", []):
            assert SECRET_ARN.match(s["valueFrom"]), f"{d}/{container['name']}: {s['name']} from {s['valueFrom']}"


@pytest.mark.parametrize("d", DAEMONS)
def test_credentials_come_only_from_secrets(d):
    """The daemon's CFG_SECRET variables, its broker URL (it holds the daemon's broker password) and its
    MongoDB URI (credentials) come from Secrets Manager or SSM, never from plain environment."""
    known = config_variables(d)
    must = {n for n, t in known.items() if t == "SECRET"} | {n for n in known if n == "AMQP_URL" or n.endswith("_MONGO_URI")}
    must -= set(UNSET.get(d, {}))
    c = daemon_container(task_definition(d), d)
    secrets = {s["name"] for s in c.get("secrets", [])}
    plain = sorted(must & {e["name"] for e in c.get("environment", [])})
    assert not plain, f"{d}: {plain} in plain environment; use secrets"
    missing = sorted(must - secrets - {n[: -len("_FILE")] for n in secrets if n.endswith("_FILE")})
    assert not missing, f"{d}: {missing} are not given as secrets"
    assert "AMQP_URL" in secrets
    for e in c.get("environment", []):
        assert not re.search(r"://[^/@\s]+:[^/@\s]+@", e["value"]), f"{d}: {e['name']} holds a password"


@pytest.mark.parametrize("d", DAEMONS)
def test_files_the_daemon_reads_are_written_by_the_init_container(d):
    """Secrets the daemon takes as a file path are written by the "init" container into a task-local
    volume before the daemon starts; writable directories on the read-only root are volumes too."""
    td = task_definition(d)
    c = daemon_container(td, d)
    inits = [x for x in td["containerDefinitions"] if x["name"] != d]
    volumes = {v["name"] for v in td.get("volumes", [])}
    for m in c.get("mountPoints", []):
        assert m["sourceVolume"] in volumes
    file_paths = [e["value"] for e in c.get("environment", []) if e["value"].startswith("/run/photo/")]
    if not inits:
        assert not file_paths and not c.get("mountPoints") and not c.get("dependsOn")
        return
    [init] = inits
    assert init["name"] == "init" and init["essential"] is False
    assert c["dependsOn"] == [{"containerName": "init", "condition": "SUCCESS"}]
    assert init["entryPoint"] == ["/bin/sh", "-c"] and len(init["command"]) == 1
    script = init["command"][0]
    assert script.startswith("set -eu;")
    for s in init.get("secrets", []):
        assert f'"${s["name"]}"' in script, f"{d}: init never uses {s['name']}"
    for path in file_paths:
        assert f"> {path}" in script, f"{d}: nothing writes {path}"
    init_mounts = {m["containerPath"]: m["sourceVolume"] for m in init["mountPoints"]}
    for m in c["mountPoints"]:
        assert init_mounts.get(m["containerPath"]) == m["sourceVolume"], f"{d}: init does not prepare {m}"
        if not m.get("readOnly"):
            assert m["containerPath"] in script, f"{d}: {m['containerPath']} is never made writable"


# ================================================================ services and autoscaling


@pytest.mark.parametrize("d", DAEMONS)
def test_service(d):
    s = load(f"services/{d}.json")
    td = task_definition(d)
    assert s["serviceName"] == d and s["taskDefinition"] == td["family"]
    assert s["launchType"] == "FARGATE" and s["desiredCount"] >= 2
    net = s["networkConfiguration"]["awsvpcConfiguration"]
    assert net["subnets"] and net["securityGroups"] and net["assignPublicIp"] == "DISABLED"
    dc = s["deploymentConfiguration"]
    assert dc["minimumHealthyPercent"] == 100 and dc["maximumPercent"] == 200
    assert dc["deploymentCircuitBreaker"] == {"enable": True, "rollback": True}
    assert s["enableExecuteCommand"] is False
    assert s["healthCheckGracePeriodSeconds"] >= 30
    if d == "gateway":
        [lb] = s["loadBalancers"]
        assert lb["containerName"] == "gateway" and lb["containerPort"] == 8443
        assert re.match(r"^arn:aws:elasticloadbalancing:[a-z0-9-]+:\d{12}:targetgroup/", lb["targetGroupArn"])
    else:
        assert "loadBalancers" not in s


def queues_of(d):
    with open(os.path.join(ROOT, "services", d, "README.md")) as f:
        return set(re.findall(r"`(" + re.escape(d) + r"\.[a-z.]+)`", f.read()))


@pytest.mark.parametrize("d", DAEMONS)
def test_autoscaling(d):
    s = load(f"services/{d}.json")
    resource = f"service/{s['cluster']}/{s['serviceName']}"
    target = load(f"autoscaling/{d}/scalable-target.json")
    assert target["ResourceId"] == resource and target["ScalableDimension"] == "ecs:service:DesiredCount"
    assert 1 <= target["MinCapacity"] <= s["desiredCount"] <= target["MaxCapacity"]

    policies = [load(f"autoscaling/{d}/{f}") for f in autoscaling_files(d) if f != "scalable-target.json"]
    names = [p["PolicyName"] for p in policies]
    assert len(names) == len(set(names))
    by_queue = {}
    cpu = []
    for p in policies:
        assert p["ResourceId"] == resource and p["PolicyType"] == "TargetTrackingScaling"
        tt = p["TargetTrackingScalingPolicyConfiguration"]
        if "PredefinedMetricSpecification" in tt:
            assert tt["PredefinedMetricSpecification"]["PredefinedMetricType"] == "ECSServiceAverageCPUUtilization"
            assert 0 < tt["TargetValue"] <= 90
            cpu.append(p)
            continue
        metrics = {m["Id"]: m for m in tt["CustomizedMetricSpecification"]["Metrics"]}
        [out] = [m for m in metrics.values() if m.get("ReturnData")]
        assert out["Expression"] == "depth / tasks"
        depth = metrics["depth"]["MetricStat"]["Metric"]
        dims = {x["Name"]: x["Value"] for x in depth["Dimensions"]}
        assert depth["Namespace"] == "AWS/AmazonMQ" and depth["MetricName"] == "MessageCount"
        assert set(dims) == {"Broker", "VirtualHost", "Queue"}
        tasks = metrics["tasks"]["MetricStat"]["Metric"]
        assert tasks["Namespace"] == "ECS/ContainerInsights" and tasks["MetricName"] == "RunningTaskCount"
        assert {x["Name"]: x["Value"] for x in tasks["Dimensions"]} == {
            "ClusterName": s["cluster"], "ServiceName": s["serviceName"]}
        assert tt["TargetValue"] > 0
        by_queue[dims["Queue"]] = p
    assert len(cpu) == 1, f"{d}: one CPU policy"
    assert set(by_queue) == QUEUE_POLICIES[d]
    unknown = set(by_queue) - (queues_of(d) if by_queue else set())
    assert not unknown, f"{d}: {sorted(unknown)} not among the queues of services/{d}/README.md"
    for q, p in by_queue.items():
        assert f"autoscaling/{d}/policy-{q}.json" in {f"autoscaling/{d}/{f}" for f in autoscaling_files(d)}
