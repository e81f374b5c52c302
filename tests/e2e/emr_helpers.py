"""Helpers for the end-to-end tests of Kiln's Amazon EMR Step API endpoint
(issue 5): a `kiln serve` with per-environment AWS key pairs, and the real
clients that talk to it (the Debian `aws` CLI, boto3, raw SigV4-signed
requests made with botocore's own signer).

    with EmrServer(self) as srv:
        emr = emr_client(srv, PRODUCTION_KEY)
        ids = emr.add_job_flow_steps(JobFlowId=cluster_id("production"),
                                     Steps=[kiln_ingest_step("l7", path)])["StepIds"]

EmrServer is kiln_server.KilnServer with the config it writes extended by
an [emr] table and an `aws_access_keys` line in each [[environment]]: the
harness itself does not know about either.
"""

import collections
import datetime
import hashlib
import http.client
import json
import os
import subprocess
import time

import kiln_server as ks
import kiln_test as kt

# The clients must not pick up credentials, a profile or a region from the
# account running the tests: everything they use is passed explicitly.
for _var in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN",
             "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_CA_BUNDLE", "AWS_ENDPOINT_URL"):
    os.environ.pop(_var, None)
os.environ["AWS_CONFIG_FILE"] = os.devnull
os.environ["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull
os.environ["AWS_EC2_METADATA_DISABLED"] = "true"

import boto3  # noqa: E402  (after the environment is cleaned)
import botocore.auth  # noqa: E402
import botocore.awsrequest  # noqa: E402
import botocore.config  # noqa: E402
import botocore.credentials  # noqa: E402

AWS_CLI = "/usr/bin/aws"
REGION = "us-east-1"
SERVICE = "elasticmapreduce"
CONTENT_TYPE = "application/x-amz-json-1.1"

AwsKey = collections.namedtuple("AwsKey", "id secret")

PRODUCTION_KEY = AwsKey("AKIAKILNE2EPRODUCTN1", "kiln-e2e-production-secret/+xyz")
STAGING_KEY = AwsKey("AKIAKILNE2ESTAGING01", "kiln-e2e-staging-secret")

# The jar and spark-submit arguments Raster Foundry's API put in every
# ingest step it sent to EMR (before the scene id and definition URI).
RF_SCRIPT_RUNNER = "s3://us-east-1.elasticmapreduce/libs/script-runner/script-runner.jar"
RF_INGEST_CLASS = "com.azavea.rf.batch.ingest.spark.Ingest"
RF_JAR_URI = "s3://rasterfoundry-global-artifacts-us-east-1/batch/rf-batch-0.1.0.jar"

STEP_ID_PATTERN = r"^s-[0-9A-Z]{13}$"
CLUSTER_ID_PATTERN = r"^j-[0-9A-Z]{13}$"


def cluster_id(environment):
    """The EMR cluster id Kiln gives an environment, computed the way
    src/server/emr.cc documents it (so a client can keep it in its config):
    the lowest 13 base-36 digits of SHA-256("kiln-emr-cluster:" + name)."""
    alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    n = int(hashlib.sha256(b"kiln-emr-cluster:" + environment.encode()).hexdigest(), 16)
    return "j-" + "".join(alphabet[n // 36 ** k % 36] for k in reversed(range(13)))


def _toml(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml(x) for x in v) + "]"
    return json.dumps(str(v))


class EmrServer(ks.KilnServer):
    """A KilnServer whose config also enables the EMR endpoint.

    `emr`: settings of the [emr] table (defaults: enabled, region us-east-1);
    `aws_keys`: {environment name: [AwsKey, ...]} (default: PRODUCTION_KEY
    for production, STAGING_KEY for staging). Other arguments as KilnServer."""

    def __init__(self, testcase=None, emr=None, aws_keys=None, **kw):
        super().__init__(testcase, **kw)
        self.emr = {"enabled": True, "regions": [REGION]}
        self.emr.update(emr or {})
        self.aws_keys = aws_keys if aws_keys is not None else {
            "production": [PRODUCTION_KEY], "staging": [STAGING_KEY]}
        self._clients = []

    def write_config(self):
        super().write_config()
        with open(self.config_path, encoding="utf-8") as f:
            lines = f.read().splitlines()
        if any(l.strip() == "[emr]" or l.strip().startswith("aws_access_keys") for l in lines):
            return  # the harness learnt to write them itself
        out, in_environment = [], False
        for line in lines:
            out.append(line)
            stripped = line.strip()
            if stripped.startswith("["):
                in_environment = stripped == "[[environment]]"
            elif in_environment and stripped.startswith("name ="):
                name = json.loads(stripped.split("=", 1)[1].strip())
                keys = self.aws_keys.get(name, [])
                if keys:
                    out.append("aws_access_keys = [%s]" % ", ".join(
                        "{ id = %s, secret = %s }" % (_toml(k.id), _toml(k.secret))
                        for k in keys))
        out += ["", "[emr]"] + ["%s = %s" % (k, _toml(v)) for k, v in self.emr.items()]
        with open(self.config_path, "w", encoding="utf-8") as f:
            f.write("\n".join(out) + "\n")

    def client(self, key, **kw):
        """emr_client(self, key, **kw), closed with the server."""
        c = emr_client(self, key, **kw)
        self._clients.append(c)
        return c

    def close(self):
        for c in self._clients:
            c.close()
        self._clients = []
        super().close()

    def step_ids(self, token=ks.PRODUCTION_TOKEN):
        """Ids of every step of the token's environment, from the native API
        (newest first): what "nothing was submitted" is checked against."""
        ids, marker = [], None
        while True:
            page = self.list_steps(token=token, limit=200, marker=marker)
            ids += [s["id"] for s in page["steps"]]
            marker = page.get("next_marker")
            if not marker:
                return ids


# --- definitions and steps ---------------------------------------------------------


def write_definition(srv, name, definition):
    """Writes a definition as <srv.tmp>/defs/<name>.json; returns its path."""
    d = os.path.join(srv.tmp, "defs")
    os.makedirs(d, exist_ok=True)
    path = os.path.join(d, name + ".json")
    with open(path, "w", encoding="utf-8") as f:
        json.dump(definition, f, indent=1)
    return path


def kiln_ingest_step(name, definition_path, action_on_failure="CONTINUE"):
    """An EMR StepConfig running `kiln ingest --definition PATH` through
    command-runner.jar, as a boto3 user writes it."""
    return {"Name": name, "ActionOnFailure": action_on_failure,
            "HadoopJarStep": {"Jar": "command-runner.jar",
                              "Args": ["kiln", "ingest", "--definition", definition_path]}}


def raster_foundry_args(scene_id, definition_uri, jar_uri=RF_JAR_URI):
    """HadoopJarStep.Args exactly as Raster Foundry's API built them."""
    return ["/usr/bin/spark-submit", "--master", "yarn", "--deploy-mode", "cluster",
            "--conf", "spark.yarn.submit.waitAppCompletion=false",
            "--class", RF_INGEST_CLASS, jar_uri,
            "-t", "--overwrite", "-s", scene_id, "-j", definition_uri]


def raster_foundry_definition(ingest_id, layer_id, source_path, catalog_uri):
    """A Raster Foundry-format ingest definition of data/L7_ETMs.tif (the
    shape of examples/raster-foundry.json: bands 3,2,1 -> targets 1,2,3)."""
    return {
        "id": ingest_id,
        "layers": [{
            "id": layer_id,
            "output": {"uri": catalog_uri, "crs": "epsg:3857", "cellType": "uint8raw",
                       "histogramBuckets": 256, "tileSize": 256,
                       "resampleMethod": "Bilinear", "keyIndexMethod": "ZCurveKeyIndexMethod",
                       "pyramid": True, "native": True},
            "sources": [{
                "uri": "file://" + source_path,
                "extent": [288776.25, 9110728.75, 298722.75, 9120760.75],
                "extentCrs": "epsg:31985", "crs": "epsg:31985",
                "cellSize": {"width": 28.5, "height": -28.5},
                "bandMaps": [{"source": 3, "target": {"name": "red", "index": 1}},
                             {"source": 2, "target": {"name": "green", "index": 2}},
                             {"source": 1, "target": {"name": "blue", "index": 3}}],
            }],
        }],
    }


# --- the aws CLI -------------------------------------------------------------------


def aws_env(key, region=REGION):
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update({"AWS_ACCESS_KEY_ID": key.id, "AWS_SECRET_ACCESS_KEY": key.secret,
                "AWS_DEFAULT_REGION": region, "AWS_CONFIG_FILE": os.devnull,
                "AWS_SHARED_CREDENTIALS_FILE": os.devnull, "AWS_PAGER": "",
                "AWS_EC2_METADATA_DISABLED": "true"})
    return env


def aws_popen(srv, key, *args):
    """Starts `aws <args> --endpoint-url <srv> --output json` (stdout and
    stderr piped); the caller waits for it."""
    cmd = [AWS_CLI] + list(args) + ["--endpoint-url", srv.url, "--output", "json"]
    return subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=aws_env(key))


def aws(srv, key, *args, expect_rc=0, timeout=120):
    """Runs the aws CLI against `srv`; returns (rc, parsed stdout JSON or
    None, stderr). AssertionError with both streams when rc != expect_rc
    (expect_rc None: any)."""
    proc = aws_popen(srv, key, *args)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise AssertionError("aws %s timed out after %ss" % (" ".join(args), timeout))
    return finish_aws(proc, out, err, args, expect_rc, srv)


def finish_aws(proc, out, err, args, expect_rc=0, srv=None):
    out_text = out.decode("utf-8", "replace")
    err_text = err.decode("utf-8", "replace")
    if expect_rc is not None and proc.returncode != expect_rc:
        raise AssertionError("aws %s\nexited %d, expected %d\n--- stdout ---\n%s\n"
                             "--- stderr ---\n%s\n%s"
                             % (" ".join(args), proc.returncode, expect_rc, out_text[-3000:],
                                err_text[-3000:], srv.log_tail() if srv else ""))
    parsed = json.loads(out_text) if out_text.strip() else None
    return proc.returncode, parsed, err_text


# --- boto3 -------------------------------------------------------------------------


def emr_client(srv, key, region=REGION, max_attempts=None, read_timeout=None):
    """A boto3 EMR client for `srv` signing with `key`. max_attempts=1 turns
    retries off (boto3 retries throttling and 5xx by default); read_timeout
    replaces botocore's 60 s."""
    kw = {}
    if max_attempts is not None:
        kw["retries"] = {"max_attempts": max_attempts, "mode": "standard"}
    if read_timeout is not None:
        kw["read_timeout"] = read_timeout
    session = boto3.session.Session(aws_access_key_id=key.id, aws_secret_access_key=key.secret,
                                    region_name=region)
    return session.client("emr", endpoint_url=srv.url,
                          config=botocore.config.Config(**kw) if kw else None)


def error_of(client_error):
    """(HTTP status, error code, message) of a botocore ClientError."""
    r = client_error.response
    return (r["ResponseMetadata"]["HTTPStatusCode"], r["Error"].get("Code"),
            r["Error"].get("Message", ""))


# --- raw signed requests -------------------------------------------------------------


class _DatedSigV4Auth(botocore.auth.SigV4Auth):
    """botocore's SigV4 signer with the signing time fixed instead of now."""

    def __init__(self, credentials, service, region, when):
        super().__init__(credentials, service, region)
        self._when = when

    def add_auth(self, request):
        request.context["timestamp"] = self._when.strftime(botocore.auth.SIGV4_TIMESTAMP)
        self._modify_request_before_signing(request)
        canonical = self.canonical_request(request)
        string_to_sign = self.string_to_sign(request, canonical)
        self._inject_signature_to_request(request, self.signature(string_to_sign, request))


def signed_headers(srv, key, operation, body, when=None, region=REGION, service=SERVICE):
    """The headers botocore's SigV4 signer gives a POST / of `body` (bytes)
    calling ElasticMapReduce.<operation>. `when`: a naive UTC datetime to
    sign at instead of now."""
    request = botocore.awsrequest.AWSRequest(
        method="POST", url=srv.url + "/", data=body,
        headers={"X-Amz-Target": "ElasticMapReduce." + operation, "Content-Type": CONTENT_TYPE})
    creds = botocore.credentials.Credentials(key.id, key.secret)
    if when is None:
        botocore.auth.SigV4Auth(creds, service, region).add_auth(request)
    else:
        _DatedSigV4Auth(creds, service, region, when).add_auth(request)
    return dict(request.headers.items())


def raw_post(srv, headers, body, timeout=60):
    """POST / with exactly these headers and body bytes; a kiln_server.Response."""
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=timeout)
    try:
        conn.request("POST", "/", body=body, headers=headers)
        r = conn.getresponse()
        payload = r.read()
        return ks.Response(r.status, {k.lower(): v for k, v in r.getheaders()}, payload)
    finally:
        conn.close()


def signed_call(srv, key, operation, payload, when=None, tamper=None, **sign_kw):
    """Signs and sends one EMR call. `payload`: a dict (sent as JSON) or
    bytes. `tamper(bytes) -> bytes` changes the body after signing."""
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode("utf-8")
    headers = signed_headers(srv, key, operation, body, when=when, **sign_kw)
    if tamper is not None:
        body = tamper(body)
    return raw_post(srv, headers, body)


def error_type(response):
    """The __type of an EMR error response body ('' when it has none)."""
    try:
        return response.json().get("__type", "")
    except (AssertionError, AttributeError):
        return ""


def utc_now():
    return datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)


# --- Airflow's EMR operators, reproduced -----------------------------------------------


class AirflowException(Exception):
    """What Airflow raises to fail a task."""


def emr_add_steps_operator(emr, steps, job_flow_id=None, job_flow_name=None,
                           cluster_states=("RUNNING", "WAITING")):
    """What airflow.providers.amazon.aws.operators.emr.EmrAddStepsOperator
    does on execute(): resolves the cluster (by id, or by name through
    ListClusters with the given states, exactly one match required), reads
    its LogUri for the log link (DescribeCluster), adds the steps and
    returns their ids; a non-200 answer fails the task."""
    if job_flow_id is None:
        found = [c for c in emr.list_clusters(ClusterStates=list(cluster_states))["Clusters"]
                 if c["Name"] == job_flow_name]
        if len(found) != 1:
            raise AirflowException("%d clusters named %r" % (len(found), job_flow_name))
        job_flow_id = found[0]["Id"]
    log_uri = emr.describe_cluster(ClusterId=job_flow_id)["Cluster"].get("LogUri")
    if log_uri is not None and not log_uri.startswith(("s3://", "s3n://", "s3a://", "https://")):
        # Airflow hands LogUri to S3Hook.parse_s3_url, which raises on anything else.
        raise AirflowException("LogUri %r is not an S3 URL" % log_uri)
    response = emr.add_job_flow_steps(JobFlowId=job_flow_id, Steps=steps)
    if response["ResponseMetadata"]["HTTPStatusCode"] != 200:
        raise AirflowException("Adding steps failed: %s" % response)
    return job_flow_id, response["StepIds"]


def emr_step_sensor(emr, job_flow_id, step_id, poke_interval=0.2, timeout=300,
                    target_states=("COMPLETED",),
                    failed_states=("CANCELLED", "FAILED", "INTERRUPTED")):
    """What airflow.providers.amazon.aws.sensors.emr.EmrStepSensor does:
    pokes DescribeStep until the state is a target (returns it) or a failed
    state (raises AirflowException "EMR job failed" plus, when the step has
    FailureDetails, "for reason R with message M and log file L")."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        response = emr.describe_step(ClusterId=job_flow_id, StepId=step_id)
        if response["ResponseMetadata"]["HTTPStatusCode"] == 200:
            status = response["Step"]["Status"]
            state = status["State"]
            if state in target_states:
                return state
            if state in failed_states:
                message = "EMR job failed"
                details = status.get("FailureDetails")
                if details:
                    message += " for reason %s with message %s and log file %s" % (
                        details.get("Reason"), details.get("Message"), details.get("LogFile"))
                raise AirflowException(message)
        time.sleep(poke_interval)
    raise AirflowException("Sensor has timed out")


def airflow_verdict(emr, steps, **operator_kw):
    """Runs the operator then a sensor per step, as a DAG would: ("success",
    step ids) or ("failed: <AirflowException message>", step ids)."""
    job_flow_id, step_ids = emr_add_steps_operator(emr, steps, **operator_kw)
    try:
        for step_id in step_ids:
            emr_step_sensor(emr, job_flow_id, step_id)
    except AirflowException as e:
        return "failed: %s" % e, step_ids
    return "success", step_ids


def assert_step_published_nothing(testcase, catalog, env, layer, step_id, timeout=10):
    """A failed or cancelled step left no trace a reader could see: no
    current, no version, and its staging directory removed (within
    `timeout` s of the step ending: the server cleans up in the scheduler
    pass after). Unlike kiln_test.assert_nothing_published, other entries
    of .staging (owner markers) are not this endpoint's concern: the native
    API tests check those."""
    ldir = kt.layer_dir(catalog, env, layer)
    testcase.assertFalse(os.path.lexists(os.path.join(ldir, "current")),
                         "%s/current exists after a step that did not complete" % ldir)
    versions = os.path.join(ldir, "versions")
    testcase.assertEqual(os.listdir(versions) if os.path.isdir(versions) else [], [],
                         "a version was published by a step that did not complete")
    staging = os.path.join(ldir, ".staging", step_id)
    deadline = time.time() + timeout
    while os.path.exists(staging) and time.time() < deadline:
        time.sleep(0.1)
    testcase.assertFalse(os.path.exists(staging), "%s not removed" % staging)


def tile_digests_of_layer(catalog, env, layer):
    """{tile path: sha256} of a layer's current version."""
    return ks.tile_digests(os.path.realpath(kt.current_dir(catalog, env, layer)))
