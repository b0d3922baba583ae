#!/usr/bin/env bash
# lab-needs: no-target
# lab-copy: tests/golden/subnet-manager
# Subnet manager on a real InfiniBand control plane without hardware: ibsim (Debian's
# ibsim-utils) simulates a fabric at the management-datagram level, and the real opensm,
# ibstat and sminfo run on it through the umad2sim preload. Fabric (/run/lab/ibnet): the
# host's 2-port HCA "lab-host" and the "array" HCA on one switch.
#
# Where each probe comes from:
#   ibstat, ibstat -p, sminfo  the real tools on the simulated fabric: /usr/local/sbin/ wrappers
#                              add the preload (the wizard runs them by name, as on hardware)
#   opensm                     the real opensm, started by systemd from the wizard's own unit
#                              (tests/golden/subnet-manager/opensm@.service) and per-port env
#                              file; a drop-in adds the preload (the one concession in the unit)
#   systemctl                  real
#   /sys/class/infiniband,     NOT simulated: umad2sim shows its sysfs only to programs that
#   IPoIB netdevs (ip)         open it through the preloaded open(), and Rust's std uses open64;
#                              an IPoIB netdev needs an InfiniBand link layer, which no software
#                              RDMA device has. The wizard's subnet-manager step takes its ports
#                              from those two (steps/network.rs chosen_ports: sysfs + `ip`), so
#                              it cannot see the simulated port: part 2 shows exactly where it
#                              stops (see the lab README, "Known limits").
# Parts: 1 no SM on the fabric (Initializing, SM lid 0, sminfo finds none); 2 the wizard's
# subnet-manager step on that fabric; 3 the wizard's opensm@ unit and env file run for real on
# the port GUID with the answers' priority: Active, SM lid = own lid, sminfo MASTER with that
# priority, enabled for boot; 4 an SM already on the fabric (a second opensm on "array" at
# priority 15): the host port shows the other SM's lid, sminfo names it, and ours, restarted,
# stays STANDBY. Every tool output is captured (captured/ibsim-*.txt) for the parsers' tests.
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

port_field() { # $1 field name, from `ibstat` of the host's (first) port
	ibstat | awk -v f="$1:" '$1 " " $2 == f || $1 == f { sub(/^[^:]*: */, ""); print; exit }'
}

# --- 1. No SM on the fabric ------------------------------------------------------------------
phase no-sm
cap ibsim-ibstat-no-sm ibstat
cap ibsim-ibstat-p ibstat -p
guid=$(ibstat -p | head -n1)
[[ $guid =~ ^0x[0-9a-f]{16}$ ]] || fail "ibstat -p gave no port GUID: $(ibstat -p)"
short() { printf '0x%x' "$1"; } # sminfo prints GUIDs without leading zeros
want_state() { [ "$(port_field State)" = "$1" ] || fail "port $guid: State $(port_field State), expected $1"; }
want_state Initializing
[ "$(port_field "SM lid")" = 0 ] || fail "SM lid $(port_field "SM lid") with no SM on the fabric"
cap ibsim-sminfo-no-sm timeout 20 sminfo && fail "sminfo found a subnet manager on a fabric without one"
echo "no SM: port $guid Initializing, SM lid 0, sminfo finds none"

# --- 2. The wizard's subnet-manager step on this fabric -------------------------------------
phase wizard
if [ -n "${LAB_WIZARD:-}" ]; then
	rc=0
	"$LAB_WIZARD" run --only subnet-manager --answers "$LAB_ANSWERS" >"$LAB_RESULTS/wizard-subnet-manager.txt" 2>&1 || rc=$?
	cat "$LAB_RESULTS/wizard-subnet-manager.txt"
	if [ "$rc" -eq 0 ]; then
		# The wizard saw the port: everything it promises must hold.
		systemctl is-active --quiet "opensm@$guid.service" || fail "the wizard's run left opensm@$guid inactive"
		systemctl is-enabled --quiet "opensm@$guid.service" || fail "opensm@$guid is not enabled for boot"
		want_state Active
		echo "the wizard started opensm on $guid"
		wizard_ran=1
	else
		# Where it stops today: the port's netdev, from sysfs and `ip`, which ibsim cannot show.
		grep -qE 'ports\[0\]\.netdev: there is no network interface ib0|no RDMA device' \
			"$LAB_RESULTS/wizard-subnet-manager.txt" ||
			fail "iser-wizard exited $rc, not for the known reason (no ib0 / no RDMA device in sysfs)"
		! systemctl is-active --quiet "opensm@$guid.service" || fail "opensm runs after a failed plan"
		echo "KNOWN LIMIT: the wizard's subnet-manager step reads its ports from /sys/class/infiniband"
		echo "and the IPoIB netdev (ip), which ibsim cannot provide; it stopped before planning"
		echo "(exit $rc). Parts 3 and 4 run the wizard's unit and probes without it."
		wizard_ran=0
	fi
else
	echo "no wizard binary: part 2 skipped"
	wizard_ran=0
fi

# --- 3. Our opensm: the wizard's unit and env file, for real --------------------------------
phase opensm-ours
if [ "$wizard_ran" -eq 0 ]; then
	install -m 644 "$G/opensm@.service" /etc/systemd/system/opensm@.service
	# The golden env file is for the unit test's GUID: the same file for the simulated port,
	# with the answers' priority (7, as there).
	sed "s/0x248a070300a80a80/$guid/g" "$G/opensm-0x248a070300a80a80.env" >"/etc/opensm/opensm-$guid.env"
fi
mkdir -p /etc/systemd/system/opensm@.service.d
printf '[Service]\n# Lab: attach opensm to the simulated fabric.\nEnvironment=LD_PRELOAD=%s\nWorkingDirectory=%s\n' \
	"$U" "$clients" >/etc/systemd/system/opensm@.service.d/lab-ibsim.conf
systemctl daemon-reload
if [ "$wizard_ran" -eq 0 ]; then
	# The wizard's own actions for a port with no SM (its plan's last two lines).
	systemctl enable --now "opensm@$guid.service"
else
	systemctl restart "opensm@$guid.service"
fi
wait_for 90 "port $guid Active" sh -c 'ibstat | grep -q "State: Active"' ||
	{ journalctl -u "opensm@$guid" --no-pager | tail -n 20; tail -n 30 "/var/log/opensm-$guid.log" || true; fail "no Active port"; }
cap ibsim-ibstat-own-sm ibstat
lid=$(port_field "Base lid")
smlid=$(port_field "SM lid")
[ "$lid" != 0 ] && [ "$smlid" = "$lid" ] || fail "base lid $lid, SM lid $smlid: expected our own lid as SM lid"
wait_for 30 "sminfo to answer" sminfo
cap ibsim-sminfo-own-sm sminfo
grep -qE "sm guid $(short "$guid"), .* priority 7 state 3 SMINFO_MASTER" "$LAB_CAPTURE/ibsim-sminfo-own-sm.txt" ||
	fail "sminfo does not show our opensm ($guid) as master at priority 7"
ps -o args= -C opensm | grep -qx "/usr/sbin/opensm -g $guid -p 7 -f /var/log/opensm-$guid.log" ||
	fail "opensm does not run as the unit says: $(ps -o args= -C opensm)"
systemctl is-enabled --quiet "opensm@$guid.service" || fail "opensm@$guid is not enabled for boot"
cap ibsim-ibnetdiscover ibnetdiscover
echo "ours: opensm -g $guid -p 7 (enabled), port Active, base lid $lid = SM lid, sminfo MASTER priority 7"

# --- 4. An SM already on the fabric --------------------------------------------------------
phase opensm-elsewhere
systemctl stop "opensm@$guid.service"
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
grep -qE "sm lid $smlid sm guid $(short "$array_guid"), .* priority 15 state 3 SMINFO_MASTER" \
	"$LAB_CAPTURE/ibsim-sminfo-external-sm.txt" || fail "sminfo does not name the array's SM as master"
echo "elsewhere: port Active with SM lid $smlid (not its own $lid), sminfo: $array_guid MASTER priority 15"
# Ours, started anyway at the lower priority, must not take over.
systemctl start "opensm@$guid.service"
wait_for 60 "our opensm to settle as standby" grep -q 'Entering STANDBY state' "/var/log/opensm-$guid.log" ||
	{ tail -n 30 "/var/log/opensm-$guid.log"; fail "our opensm did not become standby"; }
cap ibsim-sminfo-standby sminfo
grep -q "sm guid $(short "$array_guid")," "$LAB_CAPTURE/ibsim-sminfo-standby.txt" || fail "the master changed to ours"
echo "ours at priority 7 beside the array's 15: STANDBY, the array's SM stays master"
cp "/var/log/opensm-$guid.log" "$LAB_RESULTS/opensm-ours.log" || true
cp /var/log/opensm-array.log "$LAB_RESULTS/opensm-array.log" || true
systemctl stop "opensm@$guid.service" lab-array-sm.service lab-ibsim.service || true

phase_total subnet-manager.total
echo "subnet-manager: PASS"
