"""The IAM lint behind scripts/aws/lint-policies: parliament's findings, less the one it
makes of every policy that splits ec2:RunInstances over statements (see below)."""
import json, re, sys
from parliament import analyze_policy_string

PLACES = {
    "REGION": "us-east-1", "ACCOUNT": "123456789012", "DEPLOYMENT": "gallery",
    "BUCKET": "gallery-photos-123456789012-us-east-1", "NAMESPACE": "Gallery",
    "TARGET_GROUP_ARN": "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/gallery-workers/0123456789abcdef",
    "WORKER_SG": "sg-0123456789abcdef0", "MAIL_FROM": "gallery@example.com",
    "LAUNCH_TEMPLATE_ID": "lt-0123456789abcdef0", "LOG_GROUP": "/gallery/gallery",
}

def run_instances_resources(policy):
    """Every resource the policy's ec2:RunInstances statements name, together."""
    out = []
    for st in policy["Statement"]:
        actions = st["Action"] if isinstance(st["Action"], list) else [st["Action"]]
        if "ec2:RunInstances" in actions:
            out += st["Resource"] if isinstance(st["Resource"], list) else [st["Resource"]]
    return out

def matches(arn_format, resources):
    pattern = "^" + re.escape(arn_format).replace(r"\*", ".*") + "$"
    return any(re.match(pattern, r.replace("*", "x")) for r in resources)

failed = False
for path in sys.argv[1:]:
    text = open(path).read()
    for name, value in PLACES.items():
        text = text.replace("${" + name + "}", value)
    unfilled = re.findall(r"\$\{[A-Z_]+\}", text)
    if unfilled:
        print(f"{path}: placeholders this lint does not know: {sorted(set(unfilled))}")
        failed = True
        continue
    policy = json.loads(text)
    findings = []
    for f in analyze_policy_string(text, filepath=path).findings:
        # RunInstances touches an instance, its image, subnet, interface, group and volume;
        # the instance's tag condition is in a statement of its own (a request tag is checked
        # against every resource of the statement), so each statement alone names only some
        # of them. What counts is that the statements together name them all.
        if f.issue == "RESOURCE_MISMATCH" and all(
            d["action"] == "ec2:RunInstances"
            and matches(d["required_format"], run_instances_resources(policy))
            for d in f.detail
        ):
            continue
        findings.append(f)
    for f in findings:
        print(f"{path}: {f.issue}: {f.title} {f.detail} {f.location}")
    failed |= bool(findings)
    if not findings:
        print(f"{path}: no findings")
sys.exit(1 if failed else 0)
