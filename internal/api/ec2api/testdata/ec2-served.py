# Writes ec2-served.json: the operations efsd's EC2 adapter serves and every
# shape they reach, from the botocore installed here (documentation dropped).
# Run from the repository root: python3 internal/api/ec2api/testdata/ec2-served.py
import gzip, hashlib, json, os

import botocore

OPS = ["DescribeVpcs", "DescribeVpcAttribute", "DescribeSubnets", "DescribeSecurityGroups",
       "DescribeAvailabilityZones", "DescribeNetworkInterfaces", "CreateSecurityGroup",
       "AuthorizeSecurityGroupIngress", "RevokeSecurityGroupIngress", "AuthorizeSecurityGroupEgress",
       "RevokeSecurityGroupEgress", "DeleteSecurityGroup"]
here = os.path.dirname(os.path.abspath(__file__))
path = os.path.join(os.path.dirname(botocore.__file__), "data/ec2/2016-11-15/service-2.json.gz")
model = json.loads(gzip.open(path).read())
shapes = {}


def walk(name):
    if name in shapes:
        return
    s = {k: v for k, v in model["shapes"][name].items() if k != "documentation"}
    if "members" in s:
        s["members"] = {k: {kk: vv for kk, vv in v.items() if kk != "documentation"} for k, v in s["members"].items()}
    shapes[name] = s
    for m in s.get("members", {}).values():
        walk(m["shape"])
    if "member" in s:
        walk(s["member"]["shape"])


out = {"metadata": {k: model["metadata"].get(k) for k in ("apiVersion", "protocol", "serviceId", "endpointPrefix")},
       "operations": {}, "shapes": shapes}
for op in OPS:
    o = model["operations"][op]
    out["operations"][op] = {k: o[k] for k in ("name", "input", "output") if k in o}
    for k in ("input", "output"):
        if k in o:
            walk(o[k]["shape"])
with open(os.path.join(here, "ec2-served.json"), "w") as f:
    f.write(json.dumps(out, indent=1, sort_keys=True) + "\n")
with open(os.path.join(here, "ec2-served.source"), "w") as f:
    f.write("botocore %s data/ec2/2016-11-15/service-2.json.gz (sha256 %s), cut by ec2-served.py\n"
            % (botocore.__version__, hashlib.sha256(open(path, "rb").read()).hexdigest()))
