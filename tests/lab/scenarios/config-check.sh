#!/usr/bin/env bash
# lab-needs: no-target
# lab-copy: tests/golden
# Config check: every network and subnet-manager file the wizard writes, as the unit tests pin
# it (tests/golden/, copied to /lab/repo/tests/golden), read back by its own stack's tool in
# the guest. A template change that breaks a file fails the golden test; a golden file that a
# stack cannot read (or reads otherwise than meant) fails here.
#   NetworkManager keyfiles  nmcli connection load, then nmcli -t -f all connection show
#   netplan YAML             netplan generate in a scratch root: the networkd files it makes
#   ifupdown stanzas         ifquery (parsed options, auto/allow-hotplug) and ifup --no-act
#   udev rule                udevadm verify (systemd 253+: trixie; bookworm has none)
#   opensm@.service + env    systemd-analyze verify; the env file through systemd's own
#                            EnvironmentFile= parser (systemd-run)
#   RHEL /etc/sysconfig/opensm  a shell parse (RHEL's opensm launcher sources it)
#   wicked and RHEL ifcfg    no checker in Debian: golden files only (said in the log)
# Each checker is first shown a deliberately broken copy and must reject it: a checker that
# cannot fail proves nothing.
# shellcheck source=../guest/lib.sh
. /lab/guest/lib.sh
set -euo pipefail

G=/lab/repo/tests/golden
[ -d "$G/network" ] || fail "no golden files in the guest ($G)"
W=$(mktemp -d /tmp/config-check.XXXXXX)
checked=0

# Run a check on a broken copy: it must fail. $1 what, then the command.
must_reject() {
	local what=$1
	shift
	if "$@" >"$W/reject.out" 2>&1; then
		cat "$W/reject.out"
		fail "the checker accepted a broken $what: it cannot catch a broken template"
	fi
	echo "  (a broken $what is rejected: $(grep -m1 . "$W/reject.out" || echo "exit status only"))"
}

# Compare a value a tool read with the one meant. $1 what, $2 got, $3 wanted.
want() {
	[ "$2" = "$3" ] || fail "$1: the tool reads \"$2\", the wizard means \"$3\""
	echo "  $1 = $2"
}

# --- NetworkManager keyfiles (RHEL 9, SLES with NetworkManager) ----------------------------
phase nm-start
rm -f /etc/systemd/system/NetworkManager.service
mkdir -p /etc/NetworkManager/conf.d
# Profiles load whether or not a device exists; no device is touched.
printf '[main]\nno-auto-default=*\n\n[keyfile]\nunmanaged-devices=*\n' \
	>/etc/NetworkManager/conf.d/90-lab.conf
systemctl daemon-reload
systemctl start dbus.service NetworkManager.service
wait_for 60 "NetworkManager to answer" nmcli -t general status
cap nmcli-version nmcli --version
phase nm-keyfiles

# nmcli connection load FILE, failing when NetworkManager refuses the file: nmcli says
# "Could not load file" and still exits 0 (NetworkManager 1.42).
nm_load() {
	local out rc=0
	out=$(nmcli connection load "$1" 2>&1) || rc=$?
	[ -z "$out" ] || echo "$out"
	[ "$rc" -eq 0 ] && ! grep -q 'Could not load' <<<"$out"
}

# $1 golden file, $2 connection id, then "KEY=VALUE" the daemon must read back.
nm_check() {
	local file=$1 id=$2 dst
	shift 2
	dst=/etc/NetworkManager/system-connections/$id.nmconnection
	echo "keyfile $file"
	# 0600 root, as the wizard writes it: NetworkManager ignores a keyfile others can read.
	install -m 600 "$G/network/$file" "$dst"
	cap "nmcli-load-$id" nmcli connection load "$dst" || true
	if ! grep -qx '# exit=0' "$LAB_CAPTURE/nmcli-load-$id.txt" ||
		grep -q 'Could not load' "$LAB_CAPTURE/nmcli-load-$id.txt"; then
		journalctl -u NetworkManager --no-pager -o cat | grep -F "$dst" | tail -n 3
		fail "NetworkManager does not load $file (its reason above)"
	fi
	# One nmcli call (each costs seconds under emulation): terse "key:value" lines.
	cap "nmcli-show-$id" nmcli -t -f all connection show "$id" ||
		fail "NetworkManager has no connection $id after loading $file"
	local kv key
	for kv in "$@"; do
		key=${kv%%=*}
		want "$key" "$(sed -n "s/^${key//./\\.}://p" "$LAB_CAPTURE/nmcli-show-$id.txt")" "${kv#*=}"
	done
	# What NetworkManager said about the file while loading it.
	if journalctl -u NetworkManager --no-pager -o cat | grep -F "$id" | grep -iE 'warn|invalid|error|ignor'; then
		fail "NetworkManager complained about $file (above)"
	fi
	nmcli connection delete "$id" >/dev/null
	checked=$((checked + 1))
}
nm_check rhel9-ipoib-ib0.nmconnection iser-ib0 \
	connection.uuid=6348eb66-c5ae-8e8c-84eb-9cb70d4b6a9a connection.type=infiniband \
	connection.interface-name=ib0 connection.autoconnect=yes \
	infiniband.transport-mode=datagram infiniband.mtu=4092 \
	ipv4.method=manual ipv4.addresses=192.168.130.10/24 ipv4.may-fail=no ipv6.method=disabled
nm_check rhel9-roce-ens1f0.nmconnection iser-ens1f0 \
	connection.uuid=cc42e940-db18-890f-a484-0252302054a9 connection.type=802-3-ethernet \
	connection.interface-name=ens1f0 802-3-ethernet.mtu=9000 \
	ipv4.method=manual ipv4.addresses=192.168.130.10/24 ipv4.may-fail=no ipv6.method=disabled
# A broken key: an unknown transport mode must not load.
sed 's/^transport-mode=datagram/transport-mode=datagrm/' "$G/network/rhel9-ipoib-ib0.nmconnection" \
	>"$W/broken.nmconnection"
install -m 600 "$W/broken.nmconnection" /etc/NetworkManager/system-connections/iser-broken.nmconnection
must_reject "NetworkManager keyfile (transport-mode=datagrm)" \
	nm_load /etc/NetworkManager/system-connections/iser-broken.nmconnection
rm -f /etc/NetworkManager/system-connections/iser-broken.nmconnection
systemctl stop NetworkManager.service

# --- netplan (Ubuntu) ----------------------------------------------------------------------
phase netplan
cap netplan-version dpkg-query -W netplan.io
# $1 golden file, $2 interface, then the lines netplan must write into the interface's
# systemd-networkd file (what it made of the YAML).
np_check() {
	local file=$1 ifc=$2 root=$W/netplan-$2 net l
	shift 2
	echo "netplan $file"
	mkdir -p "$root/etc/netplan"
	install -m 600 "$G/network/$file" "$root/etc/netplan/${file#*-}"
	# Any warning (permissions, unknown keys) fails too.
	cap "netplan-generate-$ifc" netplan generate --root-dir "$root" || fail "netplan generate failed on $file"
	if grep -v '^+ \|^# exit=' "$LAB_CAPTURE/netplan-generate-$ifc.txt" | grep -q .; then
		cat "$LAB_CAPTURE/netplan-generate-$ifc.txt"
		fail "netplan generate printed something about $file (above)"
	fi
	(cd "$root/run" && find . -type f | sort | while read -r f; do echo "### $f"; cat "$f"; done) \
		>"$LAB_CAPTURE/netplan-generated-$ifc.txt"
	net=$root/run/systemd/network/10-netplan-$ifc.network
	[ -f "$net" ] || fail "netplan wrote no networkd file for $ifc"
	for l in "$@"; do
		grep -qxF -- "$l" "$net" || fail "netplan's networkd file for $ifc has no \"$l\""
		echo "  $l"
	done
	checked=$((checked + 1))
}
np_check ubuntu-ipoib-60-iser-ib0.yaml ib0 Name=ib0 Address=192.168.130.10/24 MTUBytes=4092 \
	'[IPoIB]' Mode=datagram
np_check ubuntu-roce-60-iser-ens1f0.yaml ens1f0 Name=ens1f0 Address=192.168.130.10/24 MTUBytes=9000
mkdir -p "$W/netplan-broken/etc/netplan"
sed 's/infiniband-mode: datagram/infiniband-mode: datagrm/' "$G/network/ubuntu-ipoib-60-iser-ib0.yaml" \
	>"$W/netplan-broken/etc/netplan/60-iser-ib0.yaml"
chmod 600 "$W/netplan-broken/etc/netplan/60-iser-ib0.yaml"
must_reject "netplan file (infiniband-mode: datagrm)" netplan generate --root-dir "$W/netplan-broken"

# --- ifupdown (Debian) ---------------------------------------------------------------------
phase ifupdown
cap ifupdown-version dpkg-query -W ifupdown
# $1 golden file, $2 interface, $3 its start line (auto or allow-hotplug), then the ifquery
# lines ("option: value") it must read.
if_check() {
	local file=$1 ifc=$2 start=$3 f=$G/network/$1
	shift 3
	echo "ifupdown $file"
	cap "ifquery-$ifc" ifquery -i "$f" "$ifc" || fail "ifquery cannot read $file"
	local l
	for l in "$@"; do
		grep -qxF -- "$l" <(ifquery -i "$f" "$ifc") || fail "ifquery reads no \"$l\" in $file"
		echo "  $l"
	done
	# ifquery -l lists the auto interfaces (lo is always one).
	case $start in
	auto) want "auto interfaces" "$(ifquery -i "$f" -l | grep -vx lo)" "$ifc" ;;
	allow-hotplug) want "allow-hotplug interfaces" "$(ifquery -i "$f" -l --allow=hotplug)" "$ifc" ;;
	esac
	# What ifup would run, without running it.
	cap "ifup-no-act-$ifc" ifup --no-act --force -i "$f" "$ifc" || fail "ifup --no-act fails on $file"
	grep -qE "^ip addr add 192\.168\.130\.10/255\.255\.255\.0 .* dev $ifc " "$LAB_CAPTURE/ifup-no-act-$ifc.txt" ||
		fail "ifup would not add 192.168.130.10/24 to $ifc"
	checked=$((checked + 1))
}
if_check debian-ipoib-iser-ib0 ib0 auto 'address: 192.168.130.10' 'netmask: 255.255.255.0' 'mtu: 4092' \
	'pre-up: echo datagram > /sys/class/net/ib0/mode'
grep -qx 'echo datagram > /sys/class/net/ib0/mode' "$LAB_CAPTURE/ifup-no-act-ib0.txt" ||
	fail "ifup would not set ib0's mode"
grep -qE '^ip link set dev ib0 mtu 4092 ' "$LAB_CAPTURE/ifup-no-act-ib0.txt" || fail "ifup would not set ib0's MTU"
if_check debian-roce-iser-ens1f0 ens1f0 auto 'address: 192.168.130.10' 'netmask: 255.255.255.0' 'mtu: 9000'
if_check debian-roce-vA vA allow-hotplug 'address: 192.168.130.10' 'netmask: 255.255.255.0'
sed 's/inet static/inet statik/' "$G/network/debian-ipoib-iser-ib0" >"$W/broken-interfaces"
must_reject "ifupdown stanza (inet statik)" ifquery -i "$W/broken-interfaces" ib0

# --- udev rule (persistent names) ----------------------------------------------------------
phase udev
rules=$G/network/70-iser-persistent-net.rules
if udevadm verify --help >/dev/null 2>&1; then
	echo "udev rule 70-iser-persistent-net.rules"
	cap udevadm-verify udevadm verify --resolve-names=never "$rules" ||
		fail "udevadm verify rejects 70-iser-persistent-net.rules"
	sed 's/SUBSYSTEM=="net"/SUBSYSTEM="net"/' "$rules" >"$W/70-broken.rules"
	must_reject "udev rule (SUBSYSTEM=\"net\")" udevadm verify --resolve-names=never "$W/70-broken.rules"
	checked=$((checked + 1))
else
	echo "udev rule: no checker on $(udevadm --version | sed 's/^/systemd /') (udevadm verify is systemd 253+, trixie)"
fi

# --- opensm@.service and its per-port env file ---------------------------------------------
phase systemd-units
guid=0x248a070300a80a80
echo "unit opensm@.service, instance opensm@$guid.service"
install -m 644 "$G/subnet-manager/opensm@.service" /etc/systemd/system/opensm@.service
mkdir -p /etc/opensm
install -m 644 "$G/subnet-manager/opensm-$guid.env" "/etc/opensm/opensm-$guid.env"
systemctl daemon-reload
# verify also loads what the unit pulls in: only what it says about opensm counts.
# --man=no: Documentation= man pages are not installed in the image.
cap systemd-analyze-verify systemd-analyze verify --man=no "/etc/systemd/system/opensm@$guid.service" || true
if grep -v '^+ \|^# exit=' "$LAB_CAPTURE/systemd-analyze-verify.txt" | grep -i opensm; then
	fail "systemd-analyze verify complains about opensm@.service (above)"
fi
grep -qx '# exit=0' "$LAB_CAPTURE/systemd-analyze-verify.txt" || fail "systemd-analyze verify failed"
# What systemd makes of the instance, and the priority its EnvironmentFile= parser reads.
want "ExecStart argv" "$(systemctl show -P ExecStart "opensm@$guid.service" | grep -o 'argv\[\]=[^;]*' | sed 's/ *$//')" \
	"argv[]=/usr/sbin/opensm -g $guid -p \${OPENSM_PRIORITY} -f /var/log/opensm-$guid.log"
want "OPENSM_PRIORITY (systemd's EnvironmentFile= parser)" \
	"$(systemd-run --quiet --wait --pipe -p EnvironmentFile="/etc/opensm/opensm-$guid.env" printenv OPENSM_PRIORITY)" 7
sed 's/^Type=simple/Type=simplest/' "$G/subnet-manager/opensm@.service" >/etc/systemd/system/opensmbroken@.service
systemctl daemon-reload
verify_clean() {
	local out
	out=$(systemd-analyze verify --man=no "$1" 2>&1) || true
	echo "$out"
	! grep -qi opensm <<<"$out"
}
must_reject "unit (Type=simplest)" verify_clean "/etc/systemd/system/opensmbroken@$guid.service"
rm -f /etc/systemd/system/opensm@.service /etc/systemd/system/opensmbroken@.service
systemctl daemon-reload
checked=$((checked + 1))

# --- RHEL /etc/sysconfig/opensm: RHEL's opensm launcher sources it -------------------------
phase sysconfig
echo "rhel-sysconfig-opensm (a shell parse: RHEL's opensm launcher sources it)"
want GUIDS "$(bash -c '. "$1"; echo "$GUIDS"' _ "$G/subnet-manager/rhel-sysconfig-opensm")" \
	"0x248a070300a80a80 0x248a070300a80a81"
want PRIORITY "$(bash -c '. "$1"; echo "$PRIORITY"' _ "$G/subnet-manager/rhel-sysconfig-opensm")" 15
checked=$((checked + 1))

phase_end
echo "no checker here for: $(cd "$G/network" && ls rhel8-* sles-* | tr '\n' ' ')(wicked and NetworkManager's ifcfg-rh plugin are not in Debian: golden files only)"
phase_total config-check.total
echo "config-check: PASS ($checked checks with the stacks' own tools)"
