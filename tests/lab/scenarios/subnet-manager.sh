#!/usr/bin/env bash
# lab-needs: no-target
# lab-copy: tests/golden/subnet-manager
# Subnet manager on a real InfiniBand control plane without hardware: ibsim (Debian's
# ibsim-utils) simulates a fabric at the management-datagram level, and the real opensm,
# ibstat and sminfo run on it through the umad2sim preload. Fabric (/run/lab/ibnet): the
# host's HCA "lab-host" and the "array" HCA on one switch. The wizard's subnet-manager step
# runs for real on it (`run --only subnet-manager`, answers/subnet-manager.json: the port
# named by its GUID, priority 7).
#
# Where each probe comes from:
#   ibstat, sminfo             the real tools on the simulated fabric: /usr/local/sbin/ wrappers
#                              add the preload; the wizard runs them by name, as on hardware,
#                              and takes its InfiniBand ports from ibstat (CA, port, GUID,
#                              state, SM lid, link layer), keyed by port GUID
#   opensm                     the real opensm, started by systemd from the unit and env file
#                              the wizard writes; a drop-in adds the preload (the one concession)
#   systemctl                  real
#   /sys/class/infiniband,     NOT simulated (umad2sim shows its sysfs only through the
#   IPoIB netdevs (ip)         preloaded open(); Rust's std uses open64; no software RDMA device
#                              has an InfiniBand link layer for IPoIB). The step needs neither:
#                              the answers name the port by GUID, and the answers' ib0, which
#                              does not exist here, stands for it. Mapping a netdev to its GUID
#                              (sysfs, the IPoIB address) is the hardware path, tested on
#                              recorded outputs (steps/subnet_manager/tests.rs).
# Parts, each failing on a wrong result:
#   0 the fabric without SM: Initializing, SM lid 0, sminfo finds none;
#   1 the wizard on it: opensm@GUID started and enabled with the answers' priority (7), its
#     unit the golden one; its verify saw the port Active; ibstat: SM lid = own lid; sminfo:
#     our GUID MASTER at 7; the worksheet says "on this host";
#   2 a rerun changes nothing (0 changes, the same opensm process);
#   3 an SM already on the fabric (a second opensm on "array" at priority 15), on a host
#     where ours is not set up: detected, ours not started (no unit, no env file), the
#     worksheet names where the SM runs (lid, GUID, priority); its rerun changes nothing.
# Every tool output is captured (captured/ibsim-*.txt) for the parsers' tests.
# shellcheck source=../guest/lib.sh
. /lab/guest/lib.sh
set -euo pipefail

U=/usr/lib/x86_64-linux-gnu/umad2sim/libumad2sim.so
G=/lab/repo/tests/golden/subnet-manager
[ -f "$U" ] || fail "no $U (ibsim-utils)"
[ -f "$G/opensm@.service" ] || fail "no golden opensm@.service in the guest"
clients=/var/tmp/ibsim-clients # umad2sim writes its per-process sysfs (./sys-PID) here
mkdir -p /run/lab "$clients" /etc/opensm

phase ibsim-start
cat >/run/lab/ibnet <<'NET'
Hca	2 "lab-host"
[1]	"sw1"[1]
[2]	"sw1"[2]

Switch	8 "sw1"
[1]	"lab-host"[1]
[2]	"lab-host"[2]
[3]	"array"[1]
[4]	"array"[2]

Hca	2 "array"
[1]	"sw1"[3]
[2]	"sw1"[4]
NET
# ibsim ends at the end of its standard input: keep it open.
ibsim=$(command -v ibsim) || fail "ibsim is not installed"
systemd-run --quiet --unit=lab-ibsim sh -c "sleep infinity | exec $ibsim -s /run/lab/ibnet"
for t in ibstat sminfo ibnetdiscover saquery; do
	real=$(command -v "$t") || fail "$t is not installed"
	cat >"/usr/local/sbin/$t" <<WRAP
#!/bin/sh
# Lab: the real $t, attached to the simulated fabric (ibsim) by the umad2sim preload.
cd $clients && LD_PRELOAD=$U exec $real "\$@"
WRAP
	chmod 755 "/usr/local/sbin/$t"
done
hash -r
wait_for 60 "ibsim to answer ibstat" ibstat
cap ibsim-version dpkg-query -W ibsim-utils opensm infiniband-diags
# The one concession: opensm, started by systemd from the wizard's unit, attaches to the
# simulated fabric. In place before the wizard starts it.
mkdir -p /etc/systemd/system/opensm@.service.d
printf '[Service]\n# Lab: attach opensm to the simulated fabric.\nEnvironment=LD_PRELOAD=%s\nWorkingDirectory=%s\n' \
	"$U" "$clients" >/etc/systemd/system/opensm@.service.d/lab-ibsim.conf
systemctl daemon-reload

port_field() { # $1 field name, from `ibstat` of the host's (first) port
	ibstat | awk -v f="$1:" '$1 " " $2 == f || $1 == f { sub(/^[^:]*: */, ""); print; exit }'
}
short() { printf '0x%x' "$1"; } # sminfo prints GUIDs without leading zeros

# The wizard, once: its output in wizard-NAME.txt, its exit status returned.
wizard() {
	local name=$1 rc=0
	"$LAB_WIZARD" run --only subnet-manager --answers "$LAB_ANSWERS" >"$LAB_RESULTS/wizard-$name.txt" 2>&1 || rc=$?
	sed 's/^/  | /' "$LAB_RESULTS/wizard-$name.txt"
	"$LAB_WIZARD" worksheet >"$LAB_RESULTS/worksheet-$name.md" 2>&1 || true
	return "$rc"
}
# The changes the last run's subnet-manager step made, from the wizard's state.
changes() {
	jq -r '[.run.done[]? | select(.step == "subnet-manager") | .changes] | last // "none"' \
		/var/lib/iser-wizard/state.json
}
# The worksheet of run $1 has a line with every one of the other arguments.
sheet_says() {
	local f="$LAB_RESULTS/worksheet-$1.md" line
	shift
	line=$(grep -F -- "$1" "$f" || true)
	shift
	[ -n "$line" ] || return 1
	for w in "$@"; do grep -qF -- "$w" <<<"$line" || return 1; done
}

# --- 0. No SM on the fabric ------------------------------------------------------------------
phase no-sm
cap ibsim-ibstat-no-sm ibstat
cap ibsim-ibstat-p ibstat -p
guid=$(ibstat -p | head -n1)
[[ $guid =~ ^0x[0-9a-f]{16}$ ]] || fail "ibstat -p gave no port GUID: $(ibstat -p)"
want=$(jq -r '.subnet_manager.priorities | keys[] | select(startswith("0x"))' "$LAB_ANSWERS")
[ "$want" = "$guid" ] || fail "the answers name port $want, the fabric's host port is $guid (net file changed?)"
prio=$(jq -r --arg g "$guid" '.subnet_manager.priorities[$g]' "$LAB_ANSWERS")
want_state() { [ "$(port_field State)" = "$1" ] || fail "port $guid: State $(port_field State), expected $1"; }
want_state Initializing
[ "$(port_field "SM lid")" = 0 ] || fail "SM lid $(port_field "SM lid") with no SM on the fabric"
cap ibsim-sminfo-no-sm timeout 20 sminfo && fail "sminfo found a subnet manager on a fabric without one"
! ip link show ib0 >/dev/null 2>&1 || fail "ib0 exists: the scenario is about a port without IPoIB"
echo "no SM: port $guid Initializing, SM lid 0, sminfo finds none; no ib0"

if [ -z "${LAB_WIZARD:-}" ]; then
	systemctl stop lab-ibsim.service || true
	skip "no wizard binary in the guest: the wizard's parts need one (run-scenario.sh --wizard PATH)"
fi
unit="opensm@$guid.service"
env="/etc/opensm/opensm-$guid.env"

# --- 1. The wizard on a fabric without SM ----------------------------------------------------
phase wizard-own-sm
wizard own || fail "iser-wizard run --only subnet-manager exited $? on the fabric without SM"
# Its verify passed: it saw the port Active through ibstat. Now everything it promised:
systemctl is-active --quiet "$unit" || fail "the wizard's run left $unit inactive"
# The word, not the status: is-enabled exits 0 for "static" too, and Debian's opensm ships a
# static opensm@.service of its own (in /lib; the wizard's in /etc overrides it).
enabled() { [ "$(systemctl is-enabled "$1" 2>/dev/null || true)" = enabled ]; }
enabled "$unit" || fail "$unit is not enabled for boot: $(systemctl is-enabled "$unit" 2>&1)"
diff -u "$G/opensm@.service" /etc/systemd/system/opensm@.service || fail "the unit written is not the golden one"
grep -qx "OPENSM_PRIORITY=$prio" "$env" || fail "$env does not carry the answers' priority $prio: $(cat "$env")"
ps -o args= -C opensm | grep -qx "/usr/sbin/opensm -g $guid -p $prio -f /var/log/opensm-$guid.log" ||
	fail "opensm does not run as the unit says: $(ps -o args= -C opensm)"
want_state Active
cap ibsim-ibstat-own-sm ibstat
lid=$(port_field "Base lid")
smlid=$(port_field "SM lid")
[ "$lid" != 0 ] && [ "$smlid" = "$lid" ] || fail "base lid $lid, SM lid $smlid: expected our own lid as SM lid"
wait_for 30 "sminfo to answer" sminfo
cap ibsim-sminfo-own-sm sminfo
grep -qE "sm guid $(short "$guid"), .* priority $prio state 3 SMINFO_MASTER" "$LAB_CAPTURE/ibsim-sminfo-own-sm.txt" ||
	fail "sminfo does not show our opensm ($guid) as master at priority $prio"
sheet_says own "Placement" "on this host" || fail "the worksheet does not say the SM runs on this host"
sheet_says own "opensm on $guid" "priority $prio" || fail "the worksheet does not list opensm on $guid at priority $prio"
[ "$(changes)" -gt 0 ] || fail "the first run recorded $(changes) changes"
cap ibsim-ibnetdiscover ibnetdiscover
echo "1: the wizard started opensm -g $guid -p $prio (enabled, $(changes) changes); port Active, lid $lid = SM lid; sminfo MASTER"

# --- 2. A rerun changes nothing --------------------------------------------------------------
phase wizard-rerun
pid=$(systemctl show -P MainPID "$unit")
sums=$(md5sum /etc/systemd/system/opensm@.service "$env")
wizard rerun || fail "the rerun exited $?"
[ "$(changes)" = 0 ] || fail "the rerun made $(changes) changes, expected 0"
grep -q "nothing to change" "$LAB_RESULTS/wizard-rerun.txt" || fail "the rerun's plan is not empty"
[ "$(systemctl show -P MainPID "$unit")" = "$pid" ] || fail "the rerun restarted opensm"
[ "$(md5sum /etc/systemd/system/opensm@.service "$env")" = "$sums" ] || fail "the rerun rewrote the opensm files"
echo "2: rerun: 0 changes, opensm (pid $pid) untouched"

# --- 3. An SM already on the fabric ----------------------------------------------------------
phase wizard-sm-elsewhere
# A host where ours is not set up: the wizard's files and unit removed.
systemctl disable --now "$unit"
rm -f /etc/systemd/system/opensm@.service "$env"
systemctl daemon-reload
array_guid=$(SIM_HOST=array ibstat -p | head -n1)
[[ $array_guid =~ ^0x[0-9a-f]{16}$ ]] && [ "$array_guid" != "$guid" ] ||
	fail "no port GUID for the array node: $array_guid"
systemd-run --quiet --unit=lab-array-sm -E LD_PRELOAD="$U" -E SIM_HOST=array -p WorkingDirectory="$clients" \
	/usr/sbin/opensm -g "$array_guid" -p 15 -f /var/log/opensm-array.log
# The array's SM takes the fabric over: our port's SM lid becomes its lid.
wait_for 90 "the array's SM to configure our port" \
	sh -c "ibstat | grep -q 'State: Active' && sminfo | grep -q 'sm guid $(short "$array_guid"),'"
cap ibsim-ibstat-external-sm ibstat
cap ibsim-sminfo-external-sm sminfo
lid=$(port_field "Base lid")
smlid=$(port_field "SM lid")
[ "$smlid" != 0 ] && [ "$smlid" != "$lid" ] || fail "base lid $lid, SM lid $smlid: expected another node's lid"
wizard elsewhere || fail "iser-wizard exited $? with an SM on the fabric"
where="SM lid $smlid, port GUID $array_guid, priority 15"
grep -qF "already runs on the fabric of " "$LAB_RESULTS/wizard-elsewhere.txt" &&
	grep -qF "($where): none is started here" "$LAB_RESULTS/wizard-elsewhere.txt" ||
	fail "the wizard did not say that the array's SM ($where) serves the port"
! systemctl is-active --quiet "$unit" || fail "the wizard started $unit beside the fabric's SM"
! enabled "$unit" || fail "the wizard enabled $unit beside the fabric's SM"
[ ! -e "$env" ] && [ ! -e /etc/systemd/system/opensm@.service ] || fail "the wizard wrote opensm files for a port it does not serve"
[ "$(changes)" = 0 ] || fail "the run beside the fabric's SM made $(changes) changes"
sheet_says elsewhere "Placement" "already on the fabric ($where)" ||
	fail "the worksheet does not say where the SM runs ($where): $(grep -i placement "$LAB_RESULTS/worksheet-elsewhere.md")"
! sheet_says elsewhere "opensm on $guid" || fail "the worksheet lists an opensm of ours"
wizard elsewhere-rerun || fail "the rerun beside the fabric's SM exited $?"
[ "$(changes)" = 0 ] || fail "the rerun beside the fabric's SM made $(changes) changes"
echo "3: SM elsewhere: detected ($where), ours not started, worksheet says so; rerun 0 changes"

cp /var/log/opensm-array.log "$LAB_RESULTS/opensm-array.log" || true
cp "/var/log/opensm-$guid.log" "$LAB_RESULTS/opensm-ours.log" || true
save_wizard_state
# The SM before the fabric: an opensm whose ibsim is gone hangs on SIGTERM (90 s stop timeout).
systemctl stop lab-array-sm.service || true
systemctl stop lab-ibsim.service || true

phase_total subnet-manager.total
echo "subnet-manager: PASS"
