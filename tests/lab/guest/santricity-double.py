#!/usr/bin/env python3
"""A SANtricity Web Services API double for the lab guest, backed by the guest's LIO target.

Answers the REST calls the wizard's array step makes (DOMAIN.md "SANtricity REST API") over
HTTPS with a self-signed certificate made with openssl at start, and makes them real on the
LIO target set up by target-setup.sh:

- the target is switched to generate_node_acls=0, so an initiator without an ACL logs in to
  nothing (the array without a host definition);
- POST hosts creates the ACL tpgt_1/acls/<initiator IQN> (the host definition);
- POST volume-mappings links the volume's LUN under that ACL (acls/<IQN>/lun_N ->
  ../../lun/lun_M): the host sees it as LUN N;
- DELETE volume-mappings/<ref> removes that link (detach --unmap);
- GET host-groups answers no groups;
- volumes are the LIO fileio backstores; a volume's WWN is the LUN's NAA id (the WWID the
  host sees, without its leading "3");
- the iSER ports are the target's network portals (x.x.x.101 controller A, .102 B; channel 1
  on the first subnet, 2 on the second), all with link "active".

Hosts and mappings are kept in memory (the ACLs are their effect); --premap VOLUME:HOST:IQN
starts with VOLUME already mapped to another HOST (whose ACL is created too).

Every request is appended to --log as "METHOD PATH STATUS" (never the Authorization header).

Usage: santricity-double.py --port 8443 --dir DIR --log FILE [--password-env VAR]
                            [--shape old|new] [--premap VOL:HOST:IQN]
DIR receives cert.pem, key.pem and fingerprint (openssl's "AB:CD:..." form); "ready" is
written there once the server listens.
"""

import argparse
import base64
import glob
import json
import os
import ssl
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# The configfs root (overridable to try the double on a fake tree outside the lab).
CFG = os.environ.get("SANTRICITY_DOUBLE_CONFIGFS", "/sys/kernel/config/target")
SYS = "/devmgr/v2/storage-systems/1"


def read(path):
    with open(path) as f:
        return f.read().strip()


def write(path, text):
    with open(path, "w") as f:
        f.write(text)


class Array:
    def __init__(self, shape):
        iqns = [os.path.basename(p) for p in glob.glob(f"{CFG}/iscsi/iqn.*")]
        if len(iqns) != 1:
            sys.exit(f"santricity-double: expected one LIO target, found {iqns}")
        self.iqn = iqns[0]
        self.tpg = f"{CFG}/iscsi/{self.iqn}/tpgt_1"
        self.shape = shape
        self.lock = threading.Lock()
        self.hosts = []
        self.mappings = []
        self.next = 1
        # The array side is real only when the target checks ACLs.
        write(f"{self.tpg}/attrib/generate_node_acls", "0")
        write(f"{self.tpg}/attrib/cache_dynamic_acls", "0")
        self.volumes = []
        for lun in sorted(glob.glob(f"{self.tpg}/lun/lun_*")):
            links = [p for p in glob.glob(f"{lun}/*") if os.path.islink(p)]
            if not links:
                continue
            backstore = os.path.realpath(links[0])
            serial = read(f"{backstore}/wwn/vpd_unit_serial").split(":")[-1].strip()
            # LIO's NAA id: 6, OUI 001405, then the first 25 hex digits of the serial.
            wwn = ("6001405" + serial.replace("-", "")[:25]).upper()
            name = os.path.basename(links[0])
            size = read(f"{backstore}/info")
            cap = "0"
            for word in size.split():
                if word.isdigit():
                    cap = word
            self.volumes.append({
                "name": name, "label": name, "id": "02000000" + wwn, "volumeRef": "02000000" + wwn,
                "wwn": wwn, "worldWideName": wwn, "capacity": cap, "mapped": False,
                "listOfMappings": [], "lio_lun": int(os.path.basename(lun)[4:]),
            })
        self.portals = sorted(os.path.basename(p).rsplit(":", 1)[0]
                              for p in glob.glob(f"{self.tpg}/np/*"))

    def ref(self, prefix, width=40):
        r = prefix + str(self.next).rjust(width - len(prefix), "0")
        self.next += 1
        return r

    def host_by_ref(self, ref):
        return next((h for h in self.hosts if h["hostRef"] == ref), None)

    def add_host(self, name, iqn, host_type):
        ref = self.ref("84000000")
        os.makedirs(f"{self.tpg}/acls/{iqn}", exist_ok=True)
        label = (name[:28] + "_1")
        h = {"hostRef": ref, "id": ref, "clusterRef": "0" * 40, "name": name, "label": name,
             "hostTypeIndex": host_type,
             "initiators": [{"nodeName": {"ioInterfaceType": "iscsi", "iscsiNodeName": iqn},
                             "label": label, "hostRef": ref}],
             "hostSidePorts": [{"type": "iscsi", "address": iqn, "label": label}],
             "ports": []}
        self.hosts.append(h)
        return h

    def add_mapping(self, vol, host, lun=None):
        used = {m["lun"] for m in self.mappings if m["mapRef"] == host["hostRef"]}
        if lun is None:
            lun = next(n for n in range(0, 256) if n not in used)
        iqn = host["initiators"][0]["nodeName"]["iscsiNodeName"]
        acl_lun = f"{self.tpg}/acls/{iqn}/lun_{lun}"
        os.makedirs(acl_lun, exist_ok=True)
        os.symlink(f"{self.tpg}/lun/lun_{vol['lio_lun']}", f"{acl_lun}/{vol['name']}")
        m = {"lunMappingRef": self.ref("88000000"), "lun": lun, "volumeRef": vol["volumeRef"],
             "mapRef": host["hostRef"], "type": "host"}
        self.mappings.append(m)
        vol["mapped"] = True
        vol["listOfMappings"] = [m]
        return m

    def interfaces(self):
        out = []
        for i, addr in enumerate(self.portals):
            ctrl = "070000000000000000000001" if addr.endswith(".101") else "070000000000000000000002"
            subnets = sorted({a.rsplit(".", 1)[0] for a in self.portals})
            channel = subnets.index(addr.rsplit(".", 1)[0]) + 1
            cpr = str(i + 1)
            base = {"interfaceRef": "2201" + cpr.rjust(4, "0"), "channelType": "hostside",
                    "controllerRef": ctrl}
            if self.shape == "old":
                base["ioInterfaceTypeData"] = {"interfaceType": "iscsi", "iscsi": {
                    "controllerId": ctrl, "channel": channel, "channelPortRef": cpr,
                    "interfaceData": {"type": "infiniband", "infinibandData": {"isIser": True}},
                    "ipv4Data": {"ipv4AddressData": {"ipv4Address": addr,
                                                     "ipv4SubnetMask": "255.255.255.0"}}}}
            else:
                base["ioInterfaceTypeData"] = {"interfaceType": "ib", "ib": {
                    "controllerId": ctrl, "channel": channel, "channelPortRef": cpr,
                    "isISERSupported": True, "isSRPSupported": False, "isNVMeSupported": False}}
                base["commandProtocolPropertiesList"] = {"commandProtocolProperties": [{
                    "commandProtocol": "scsi", "scsiProperties": {
                        "scsiProtocolType": "iser", "iserProperties": {"ipv4Data": {
                            "ipv4AddressData": {"configState": "configured", "ipv4Address": addr,
                                                "ipv4SubnetMask": "255.255.255.0"}}}}}]}
            out.append(base)
        return out

    def error(self, status, msg):
        return status, {"errorMessage": msg, "localizedMessage": msg, "retcode": "error",
                        "codeType": "symbol"}

    def answer(self, method, path, body):
        with self.lock:
            return self._answer(method, path, body)

    def _answer(self, method, path, body):
        if method == "GET":
            if path == "/devmgr/utils/about":
                return 200, {"version": "03.10.9000.0009", "runningAsProxy": False}
            if path == SYS:
                return 200, {"id": "1", "name": "lab-array", "fwVersion": "08.52.00.00-lab",
                             "wwn": "600A098000A4B28D000000005DA9D744", "status": "optimal"}
            sub = path[len(SYS):] if path.startswith(SYS) else ""
            if sub == "/iscsi/target-settings":
                return 200, {"targetRef": "90000000600A098000A4B28D00334A065DA9D747",
                             "nodeName": {"ioInterfaceType": "iscsi", "iscsiNodeName": self.iqn},
                             "portals": [{"groupTag": 1, "ipAddress": {"addressType": "ipv4",
                                                                       "ipv4Address": p},
                                          "tcpListenPort": 3260} for p in self.portals]}
            if sub == "/interfaces?channelType=hostside":
                return 200, self.interfaces()
            if sub == "/hardware-inventory":
                return 200, {"ibPorts": [{"channelPortRef": str(i + 1), "linkState": "active"}
                                         for i in range(len(self.portals))]}
            if sub == "/host-types":
                return 200, [{"name": "FactoryDefault", "index": 0, "code": "FactoryDefault"},
                             {"name": "Linux", "index": 6, "code": "LNX"},
                             {"name": "LnxDHALUA", "index": 28, "code": "LnxDHALUA"}]
            if sub == "/hosts":
                return 200, self.hosts
            if sub == "/host-groups":
                # No host groups: every host's clusterRef is all zeros.
                return 200, []
            if sub == "/volumes":
                return 200, [{k: v for k, v in vol.items() if k != "lio_lun"}
                             for vol in self.volumes]
            if sub == "/volume-mappings":
                return 200, self.mappings
            return self.error(404, "The requested resource was not found.")
        if method == "POST" and path == SYS + "/hosts":
            name = body.get("name", "")
            if any(h["name"] == name for h in self.hosts):
                return self.error(422, "The host name is already in use.")
            ports = body.get("ports") or []
            if not ports:
                return self.error(422, "A host needs a port.")
            iqn = ports[0]["port"]
            if any(iqn in [i["nodeName"]["iscsiNodeName"] for i in h["initiators"]]
                   for h in self.hosts):
                return self.error(422, "The host port identifier is already in use.")
            return 201, self.add_host(name, iqn, body.get("hostType", {}).get("index", 28))
        if method == "POST" and path == SYS + "/volume-mappings":
            vol = next((v for v in self.volumes
                        if v["volumeRef"] == body.get("mappableObjectId")), None)
            host = self.host_by_ref(body.get("targetId"))
            if vol is None or host is None:
                return self.error(422, "The volume or the host does not exist.")
            if any(m["volumeRef"] == vol["volumeRef"] for m in self.mappings):
                return self.error(422, "The volume is already mapped.")
            return 201, self.add_mapping(vol, host, body.get("lun"))
        if method == "DELETE" and path.startswith(SYS + "/volume-mappings/"):
            ref = path.rsplit("/", 1)[1]
            m = next((m for m in self.mappings if m["lunMappingRef"] == ref), None)
            if m is None:
                return self.error(404, "The mapping does not exist.")
            host = self.host_by_ref(m["mapRef"])
            vol = next(v for v in self.volumes if v["volumeRef"] == m["volumeRef"])
            iqn = host["initiators"][0]["nodeName"]["iscsiNodeName"]
            acl_lun = f"{self.tpg}/acls/{iqn}/lun_{m['lun']}"
            os.unlink(f"{acl_lun}/{vol['name']}")
            os.rmdir(acl_lun)
            self.mappings.remove(m)
            vol["mapped"] = False
            vol["listOfMappings"] = []
            return 204, None
        return self.error(405, "Method not allowed.")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=8443)
    ap.add_argument("--dir", required=True)
    ap.add_argument("--log", required=True)
    ap.add_argument("--user", default="admin")
    ap.add_argument("--password-env", default="ISER_ARRAY_PASSWORD")
    ap.add_argument("--shape", choices=["old", "new"], default="old")
    ap.add_argument("--premap", action="append", default=[])
    args = ap.parse_args()
    password = os.environ.get(args.password_env)
    if not password:
        sys.exit(f"santricity-double: {args.password_env} is not set")
    os.makedirs(args.dir, exist_ok=True)
    cert, key = f"{args.dir}/cert.pem", f"{args.dir}/key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key,
                    "-out", cert, "-days", "2", "-subj", "/CN=lab-array",
                    "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    fp = subprocess.run(["openssl", "x509", "-noout", "-fingerprint", "-sha256", "-in", cert],
                        check=True, capture_output=True, text=True).stdout.strip()
    write(f"{args.dir}/fingerprint", fp.split("=", 1)[1] + "\n")

    array = Array(args.shape)
    for spec in args.premap:
        vname, hname, iqn = spec.split(":", 2)
        vol = next(v for v in array.volumes if v["name"] == vname)
        array.add_mapping(vol, array.add_host(hname, iqn, 28))
    want_auth = "Basic " + base64.b64encode(f"{args.user}:{password}".encode()).decode()
    log = open(args.log, "a", buffering=1)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a):
            pass

        def handle_one(self, method):
            n = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(n) if n else b""
            try:
                body = json.loads(raw) if raw else {}
            except ValueError:
                body = {}
            if self.headers.get("Authorization") != want_auth:
                status, out = 401, None
            else:
                status, out = array.answer(method, self.path, body)
            text = b"" if out is None else json.dumps(out).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(text)))
            self.end_headers()
            self.wfile.write(text)
            log.write(f"{method} {self.path} {status}" +
                      (f" {json.dumps(body, sort_keys=True)}" if method != "GET" else "") + "\n")

        def do_GET(self):
            self.handle_one("GET")

        def do_POST(self):
            self.handle_one("POST")

        def do_DELETE(self):
            self.handle_one("DELETE")

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    srv = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    write(f"{args.dir}/ready", "1\n")
    srv.serve_forever()


if __name__ == "__main__":
    main()
