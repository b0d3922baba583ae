#!/usr/bin/env bash
# Baseline: the bare command sequence an administrator types to attach this host to the lab
# array (what the wizard replaces). Proves the lab works, gives the speed baseline, and saves
# the real outputs of the commands the wizard parses (captured/*.txt).
#
# Timed by the wizard's step names (network, iscsi, sessions, multipath, filesystem, verify) so
# that benches/attach.sh compares the same work: captures a person would not type are taken
# outside the phases (a phase ended, then started again under the same name: the figures add).
# The same work as the wizard does with the lab's answers, typed as the vendor procedure
# prints it: the port addresses kept in ifupdown's files and brought up with ifup,
# node.startup and the replacement timeout in iscsid.conf, each iface with the host's IQN,
# the file system in fstab by UUID (mounted from there), and the verify's size
# (answers' verify.size) written with O_DIRECT, read back past the page cache, compared and
# removed.
#
# Pass: 4 sessions, all iser, each on the iface of its portal's subnet; the map of LUN 0 has 4
# active paths; the new file system is mounted; a file written with O_DIRECT reads back equal;
# RDMA traffic crossed both host ports (not short-circuited inside the kernel).
# shellcheck source=../guest/lib.sh
. /lab/guest/lib.sh
set -euo pipefail

iqn=$LAB_TARGET_IQN
wwid=$LAB_LUN0_WWID
mnt=/mnt/lab
# Subnet and iface of each host port.
declare -A port_addr=([vA]=192.168.130.10/24 [vB]=192.168.131.10/24)
declare -A port_net
for p in vA vB; do port_net[$p]=${LAB_PORT_NET[$p]}; done
declare -A first_portal=([vA]=192.168.130.101 [vB]=192.168.131.101)
# The wizard's verify size in the same answers (a whole number of MiB, as the lab's are).
verify_mib=$(python3 -c 'import json, sys, re
s = json.load(open(sys.argv[1]))["verify"]["size"]
print(int(re.fullmatch(r"(\d+)MiB", s).group(1)))' "${LAB_ANSWERS:-/lab/answers/baseline.json}") ||
	fail "no verify.size in MiB in ${LAB_ANSWERS:-the answers}"

cap iscsiadm-session-none iscsiadm -m session || true
cap iscsiadm-node-none iscsiadm -m node || true
cap rdma-link-show rdma link show
cap ibstat ibstat
cap ibstat-p ibstat -p
cap ibv_devinfo ibv_devinfo
cap ibv_devinfo-v-rxe0 ibv_devinfo -v -d rxe0

phase network
# Kept across reboots in Debian's own stack, then brought up, one port after the other.
grep -qx 'source /etc/network/interfaces.d/\*' /etc/network/interfaces ||
	echo 'source /etc/network/interfaces.d/*' >>/etc/network/interfaces
mkdir -p /etc/network/interfaces.d
for p in vA vB; do
	printf 'auto %s\niface %s inet static\n    address %s\n    mtu 1500\n' \
		"$p" "$p" "${port_addr[$p]}" >"/etc/network/interfaces.d/iser-$p"
	ifup "$p"
done
for p in vA vB; do
	for t in 101 102; do
		ping -q -c1 -W5 -I "$p" "${port_net[$p]}$t" >/dev/null || fail "no ping from $p to ${port_net[$p]}$t"
	done
done
phase_end
cap ip-d-j-addr-show ip -d -j addr show
cap ip-j-addr-show-vA ip -j addr show dev vA

phase iscsi
# New node records log in at boot and give up on a lost path after 20 s (full key names: the
# vendor's short `replacement_timeout` is ignored by open-iscsi).
sed -i -e 's/^node\.startup = manual$/node.startup = automatic/' \
	-e 's/^node\.session\.timeo\.replacement_timeout = .*/node.session.timeo.replacement_timeout = 20/' \
	/etc/iscsi/iscsid.conf
host_iqn=$(sed -n 's/^InitiatorName=//p' /etc/iscsi/initiatorname.iscsi)
for p in vA vB; do
	iscsiadm -m iface -I "iface-$p" -o new >/dev/null
	iscsiadm -m iface -I "iface-$p" -o update -n iface.transport_name -v iser >/dev/null
	iscsiadm -m iface -I "iface-$p" -o update -n iface.net_ifacename -v "$p" >/dev/null
	iscsiadm -m iface -I "iface-$p" -o update -n iface.initiatorname -v "$host_iqn" >/dev/null
done
phase_end
cap iscsiadm-iface iscsiadm -m iface
cap iscsiadm-iface-show-vA iscsiadm -m iface -I iface-vA

# Discovery and login: the wizard's sessions step.
phase sessions
for p in vA vB; do
	cap "iscsiadm-discovery-st-$p" iscsiadm -m discovery -t st -p "${first_portal[$p]}" -I "iface-$p"
done
phase_end
cap iscsiadm-node-all iscsiadm -m node
phase sessions
# SendTargets reports every portal to every iface: keep only each iface's own subnet.
iscsiadm -m node | while read -r portal target; do
	addr=${portal%%:*}
	for p in vA vB; do
		if [[ $addr != "${port_net[$p]}"* ]]; then
			iscsiadm -m node -T "$target" -p "${portal%,*}" -I "iface-$p" -o delete 2>/dev/null || true
		fi
	done
done
phase_end
cap iscsiadm-node iscsiadm -m node
cap iscsiadm-node-P1 iscsiadm -m node -P 1
n=$(iscsiadm -m node | wc -l)
[ "$n" -eq 4 ] || fail "expected 4 node records after deleting cross-subnet ones, got $n"

phase sessions
cap iscsiadm-node-login iscsiadm -m node -T "$iqn" -l
phase_end
cap iscsiadm-session iscsiadm -m session
cap initiatorname cat /etc/iscsi/initiatorname.iscsi
cap iscsiadm-node-login-again iscsiadm -m node -T "$iqn" -p "${first_portal[vA]}" -I iface-vA -l || true

cap multipath-ll-before-conf multipath -ll || true
phase multipath
# Debian's defaults leave the LIO LUNs unmapped: allow every multipath-capable device.
cat >/etc/multipath.conf <<'CONF'
defaults {
	find_multipaths no
	user_friendly_names no
}
CONF
systemctl reload multipathd
paths_up() { [ "$(active_paths "$1")" -eq "$2" ]; }
wait_for 60 "map $wwid with 4 active paths" paths_up "$wwid" 4 || {
	multipath -ll >&2 || true
	fail "no map $wwid with 4 active paths"
}
wait_for 30 "map $LAB_LUN1_WWID with 4 active paths" paths_up "$LAB_LUN1_WWID" 4 ||
	fail "no map $LAB_LUN1_WWID with 4 active paths"
dev=/dev/mapper/$wwid
wait_for 10 "$dev" test -b "$dev" || fail "$dev does not appear"
phase_end

cap multipath-ll multipath -ll
cap multipath-ll-wwid multipath -ll "$wwid"
cap multipath-l-v1 multipath -l -v1
cap multipathd-show-paths multipathd show paths format '%w %d %t %T %c %s %p'
cap multipathd-show-paths-raw multipathd show paths raw format '%w %d %i %t %T %o %s'
cap multipathd-show-maps multipathd show maps format '%w %d %N %n %S'
cap multipathd-show-maps-json multipathd show maps json
cap lsblk-json-unformatted lsblk -J -b -o NAME,KNAME,PATH,TYPE,SIZE,MOUNTPOINT,FSTYPE,PKNAME,WWN,SERIAL
cap blkid-p-empty blkid -p -o export "$dev" || true
cap wipefs-json-empty wipefs -n -J "$dev" || true
cap queue-limits grep -H . "/sys/block/$(basename "$(readlink -f "$dev")")/queue/"{optimal_io_size,minimum_io_size,physical_block_size,logical_block_size} "/sys/block/$(basename "$(readlink -f "$dev")")/alignment_offset"
cap dm-uuid-name grep -H . "/sys/block/$(basename "$(readlink -f "$dev")")/dm/"{name,uuid}

if [ "${LAB_DATA_LUN:-0}" = 1 ]; then
	# Target variant --data-lun: LUN 0 carries a file system. Capture what the wizard's
	# "carries data" probes see, prove the data is there, and stop before anything destructive.
	cap blkid-p-data-lun blkid -p -o export "$dev" || true
	cap wipefs-json-data-lun wipefs -n -J "$dev" || true
	cap lsblk-json-data-lun lsblk -J -b -o NAME,KNAME,PATH,TYPE,SIZE,MOUNTPOINT,FSTYPE,PKNAME,WWN,SERIAL "$dev"
	mkdir -p "$mnt"
	mount -o ro "$dev" "$mnt"
	grep -q 'precious data' "$mnt/precious.txt" || fail "the data LUN does not carry precious.txt"
	umount "$mnt"
	check_sessions
	check_map "$wwid" 4
	phase_total baseline.total
	echo "baseline (data LUN): PASS"
	exit 0
fi

# Partition, mkfs and mount: the wizard's filesystem step.
phase filesystem
# Start at the device's optimal I/O size (8 MiB on LIO fileio), not parted's 0%.
cap parted-mklabel parted -s "$dev" mklabel gpt mkpart primary ext4 8MiB 100%
phase_end
cap dev-mapper-after-parted ls -l /dev/mapper/
phase filesystem
# libparted itself maps the new partition as <wwid>p1; then udev (kpartx) replaces it with
# Debian's <wwid>-part1. Settle, then take the name lsblk gives once it holds still.
udevadm settle
part_of() { lsblk -nrpo PATH,TYPE "$1" | awk '$2 == "part" { print $1; exit }'; }
part_stable() {
	local a b
	a=$(part_of "$dev") && [ -n "$a" ] && [ -b "$a" ] || return 1
	sleep 1
	udevadm settle
	b=$(part_of "$dev") && [ "$a" = "$b" ] && [ -b "$b" ]
}
wait_for 30 "partition of $dev" part_stable || fail "no partition appeared on $dev"
part=$(part_of "$dev")
phase_end
echo "partition: $part"
cap parted-m-print parted -s -m "$dev" unit s print
cap lsblk-part lsblk -J -b -o NAME,KNAME,PATH,TYPE,SIZE,MOUNTPOINT,FSTYPE,PKNAME,WWN,SERIAL "$dev"

phase filesystem
cap mkfs-ext4 mkfs.ext4 -F "$part"
mkdir -p "$mnt"
uuid=$(blkid -s UUID -o value "$part")
echo "UUID=$uuid $mnt ext4 defaults,_netdev,nofail 0 2" >>/etc/fstab
mount "$mnt"
findmnt -n "$mnt" >/dev/null || fail "$mnt is not mounted"

# The data check: the wizard's verify step.
phase verify
# Write with O_DIRECT, drop caches, read back with O_DIRECT: the bytes come from the array.
head -c "${verify_mib}M" /dev/urandom >/tmp/lab-src
dd if=/tmp/lab-src of="$mnt/lab-check" bs=1M oflag=direct conv=fsync status=none
echo 3 >/proc/sys/vm/drop_caches
dd if="$mnt/lab-check" of=/tmp/lab-back bs=1M iflag=direct status=none
cmp /tmp/lab-src /tmp/lab-back || fail "read-back differs from what was written"
rm -f /tmp/lab-src /tmp/lab-back "$mnt/lab-check"
phase_end

# --- Checks and captures of the attached state -------------------------------------------
cap iscsiadm-session-P3 iscsiadm -m session -P 3
cap iscsiadm-session-P1 iscsiadm -m session -P 1
cap findmnt-json findmnt -J "$mnt"
cap findmnt-json-all findmnt -J
cap lsblk-json lsblk -J -b -o NAME,KNAME,PATH,TYPE,SIZE,MOUNTPOINT,FSTYPE,PKNAME,WWN,SERIAL
cap blkid-p-ext4 blkid -p -o export "$part"
cap blkid-o-export blkid -o export "$part"
cap wipefs-json-ext4 wipefs -n -J "$part"
cap wipefs-json-gpt wipefs -n -J "$dev"
cap dev-mapper-ls ls -l /dev/mapper/
cap rdma-statistic rdma statistic show
cap rdma-res-cm_id rdma res show cm_id
cap multipath-ll-after multipath -ll

check_sessions
check_map "$wwid" 4
check_mounted "$mnt" >/dev/null
check_rdma_traffic
check_rdma_paths
phase_total baseline.total
echo "baseline: PASS"
