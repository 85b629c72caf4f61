#!/usr/bin/env python3
"""Regenerates botocore_fixtures.json: requests signed by botocore (oracle B).

Run from this directory with botocore installed:

    python3 gen_botocore.py > botocore_fixtures.json

Most fixtures come from a real botocore EFS client (exactly what boto3 sends),
captured at the 'before-send' hook so nothing leaves the process. A few edge
cases (Date header instead of X-Amz-Date, dot segments, repeated and padded
header values, UNSIGNED-PAYLOAD, presigned URL) use SigV4Auth/SigV4QueryAuth
directly. Time is frozen by replacing botocore.auth.get_current_datetime.
"""
import datetime
import json
import sys
from urllib.parse import urlsplit

import botocore
import botocore.auth
import botocore.session
from botocore.awsrequest import AWSRequest, AWSResponse
from botocore.credentials import Credentials

FROZEN = datetime.datetime(2026, 1, 2, 3, 4, 5)
ACCESS_KEY = "AKIDBOTOCOREEXAMPLE"
SECRET_KEY = "botocore/secret+KEY=="
ARN = (
    "arn:aws:elasticfilesystem:us-east-1:123456789012:"
    "file-system/fs-0123456789abcdef0"
)

botocore.auth.get_current_datetime = lambda *a, **k: FROZEN


def text(v):
    return v.decode("utf-8") if isinstance(v, bytes) else str(v)


# Unsigned headers whose values change from run to run or machine to machine;
# pinned so the fixture file is reproducible. They are not signed.
PINNED = {
    "user-agent": "Botocore/" + botocore.__version__,
    "amz-sdk-invocation-id": "00000000-0000-4000-8000-000000000000",
}


def fixture(name, prepared, region, expires=None, headers=None):
    """Record a prepared request as the bytes the HTTP client would send.

    headers overrides prepared.headers: AWSPreparedRequest keeps one value
    per name, so repeated headers must come from the AWSRequest.
    """
    parts = urlsplit(prepared.url)
    pairs = []
    for k, v in headers if headers is not None else prepared.headers.items():
        k, v = text(k), text(v)
        pairs.append([k, PINNED.get(k.lower(), v)])
    body = prepared.body or b""
    if isinstance(body, str):
        body = body.encode("utf-8")
    f = {
        "name": name,
        "method": prepared.method,
        # urllib3 derives Host from the URL netloc (default port omitted).
        "host": botocore.auth._host_from_url(prepared.url),
        "path": parts.path,
        "query": parts.query,
        "headers": pairs,
        "body": body.decode("utf-8"),
        "access_key": ACCESS_KEY,
        "secret_key": SECRET_KEY,
        "region": region,
        "time": FROZEN.strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    if expires is not None:
        f["expires"] = expires
    return f


def client_fixtures():
    out = []
    session = botocore.session.get_session()

    def make(region, endpoint, token=None):
        c = session.create_client(
            "efs",
            region_name=region,
            endpoint_url=endpoint,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
            aws_session_token=token,
        )
        c.meta.events.register("before-send", capture)
        return c

    pending = {}

    def capture(request, **kwargs):
        out.append(fixture(pending["name"], request, pending["region"]))

        class Raw:
            def stream(self, **kw):
                yield b"{}"

        return AWSResponse(request.url, 200, {}, Raw())

    def call(name, client, region, op, **params):
        pending["name"], pending["region"] = name, region
        getattr(client, op)(**params)

    local = make("eu-west-3", "http://localhost:9000")
    call("client CreateFileSystem", local, "eu-west-3", "create_file_system",
         CreationToken="token 1", PerformanceMode="generalPurpose",
         Tags=[{"Key": "Name", "Value": "h\u00e9llo w\u00f6rld"}])
    call("client DescribeFileSystems query", local, "eu-west-3",
         "describe_file_systems", CreationToken="a b+c/d~e*f", MaxItems=5)
    call("client DeleteReplicationConfiguration ARN", local, "eu-west-3",
         "delete_replication_configuration", SourceFileSystemId=ARN)
    call("client ListTagsForResource ARN and query", local, "eu-west-3",
         "list_tags_for_resource", ResourceId=ARN, MaxResults=10)
    call("client TagResource ARN with body", local, "eu-west-3",
         "tag_resource", ResourceId=ARN,
         Tags=[{"Key": "team", "Value": "storage"}])

    aws = make("us-east-1", "https://elasticfilesystem.us-east-1.amazonaws.com",
               token="session-token/with+chars=")
    call("client session token, https default port", aws, "us-east-1",
         "describe_mount_targets", FileSystemId="fs-0123456789abcdef0")
    return out


def direct_fixtures():
    out = []
    creds = Credentials(ACCESS_KEY, SECRET_KEY)
    region = "ap-southeast-2"
    base = "http://localhost:9000"

    def sign(name, method, url, headers=None, data=None, auth=None):
        req = AWSRequest(method=method, url=url, data=data)
        for k, v in headers or []:
            req.headers[k] = v  # HTTPHeaders appends: repeats are kept
        auth = auth or botocore.auth.SigV4Auth(creds, "elasticfilesystem",
                                               region)
        auth.add_auth(req)
        expires = getattr(auth, "_expires", None)
        prepared = req.prepare()
        wire = list(req.headers.items())  # keeps repeated names
        if "Content-Length" in prepared.headers:
            wire.append(("Content-Length", prepared.headers["Content-Length"]))
        out.append(fixture(name, prepared, region, expires, wire))

    sign("Date header instead of X-Amz-Date", "GET",
         base + "/2015-02-01/file-systems",
         headers=[("Date", "placeholder")])
    sign("dot segments and double slash normalised by botocore", "GET",
         base + "/2015-02-01/./file-systems//fs-1/../fs-2")
    sign("repeated and padded header values", "PUT",
         base + "/2015-02-01/file-systems/fs-1/lifecycle-configuration",
         headers=[("Content-Type", "application/json"),
                  ("X-Amz-Meta-Note", "  a   b  c "),
                  ("X-Amz-Meta-Note", "second")],
         data=b'{"LifecyclePolicies":[]}')
    sign("UNSIGNED-PAYLOAD", "POST", base + "/2015-02-01/access-points",
         headers=[("Content-Type", "application/json"),
                  ("X-Amz-Content-SHA256", "UNSIGNED-PAYLOAD")],
         data=b'{"FileSystemId":"fs-1"}')
    sign("presigned query", "GET",
         base + "/2015-02-01/file-systems?MaxItems=5&FileSystemId=fs-1",
         auth=botocore.auth.SigV4QueryAuth(creds, "elasticfilesystem",
                                           region, expires=300))
    return out


def main():
    fixtures = client_fixtures() + direct_fixtures()
    json.dump({"botocore_version": botocore.__version__,
               "fixtures": fixtures}, sys.stdout, indent=2, ensure_ascii=False)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
