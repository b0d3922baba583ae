#!/usr/bin/env bash
# Inside the lab guest: build the fabric and the storage array the host will attach to.
#
# Usage: target-setup.sh [--data-lun] [--luns N]
#   --data-lun   LUN 0 already carries an ext4 file system holding /precious.txt (the
#                "LUN carries data" case: the wizard must refuse to format it).
#   --luns N     N LUNs (1 to 9; default 2, LUN 0 and LUN 1 as below), for the scenarios
#                with several volumes; "--luns=N" is the same.
#
# Topology (everything in the initial network namespace, see "Routing" below):
#   host port A  vA  <-veth->  tA  target, subnet A: 192.168.130.101/24, 192.168.130.102/24
#   host port B  vB  <-veth->  tB  target, subnet B: 192.168.131.101/24, 192.168.131.102/24
#   soft-RoCE: rxe0 on vA, rxe1 on vB (the host's "HCA ports"), rxetA on tA, rxetB on tB.
# vA and vB are brought up but get NO address: configuring them is the scenario's (or the
# wizard's) job, as on a real host.
#
# Target: LIO via configfs, IQN iqn.2002-09.com.lab:array, tpg 1, one iSER-enabled network
# portal per target address, LUN 0 fileio 512M, LUN 1 fileio 256M and any further LUN 128M,
# each with its own vpd_unit_serial (LIO derives the NAA WWID from the first 25 hex digits of
# the serial, so the serials differ in their first digit: LUN i's starts with i+1).
#
# Writes /run/lab/target.env (facts for scenarios) and prints one line per phase timing.
set -euo pipefail

data_lun=0
luns=2
while [ $# -gt 0 ]; do
	case $1 in
	--data-lun) data_lun=1; shift ;;
	--luns) luns=${2:-}; shift 2 || { echo "target-setup: --luns wants a number" >&2; exit 2; } ;;
	--luns=*) luns=${1#--luns=}; shift ;;
	*) echo "target-setup: unknown argument: $1" >&2; exit 2 ;;
	esac
done
[[ $luns =~ ^[1-9]$ ]] || { echo "target-setup: --luns wants 1 to 9, not '$luns'" >&2; exit 2; }

iqn=iqn.2002-09.com.lab:array
store=/var/lib/lab-target
lun_sizes=()
lun_serials=()
lun_wwids=()
for ((i = 0; i < luns; i++)); do
	case $i in 0) lun_sizes+=(512M) ;; 1) lun_sizes+=(256M) ;; *) lun_sizes+=(128M) ;; esac
	lun_serials+=("$((i + 1))ab00000000000000000000000000000")
	# What multipath and udev will call the LUN: "3" + NAA 6 + OUI 001405 + 25 serial digits.
	lun_wwids+=("36001405$((i + 1))ab0000000000000000000000")
done
portals_a=(192.168.130.101 192.168.130.102)
portals_b=(192.168.131.101 192.168.131.102)

ts() { date +%s.%N; }
t0=$(ts)

# --- Kernel modules ----------------------------------------------------------------------
# Soft-RoCE mishandles the remote invalidation iSER asks the target for (rdma_rxe:
# "rxe_reg_fast_mr: mr->lkey = ... not free", then "iser: memreg failure", the sessions drop
# and LIO spins in iscsit_build_pdu_and_seq_lists). With always_register=N the initiator does
# not offer send-with-invalidate and invalidates its own memory registrations.
echo "options ib_iser always_register=N" >/etc/modprobe.d/lab-iser.conf
for m in rdma_rxe ib_uverbs rdma_ucm ib_umad ib_iser ib_isert target_core_mod target_core_file \
	iscsi_target_mod dm_multipath; do
	modprobe "$m"
done
mountpoint -q /sys/kernel/config || mount -t configfs configfs /sys/kernel/config
t_mod=$(ts)

# --- Links ---------------------------------------------------------------------------------
ip link add vA type veth peer name tA
ip link add vB type veth peer name tB
for l in vA vB tA tB; do
	ip link set "$l" up
done
for p in "${portals_a[@]}"; do ip addr add "$p/24" dev tA noprefixroute; done
for p in "${portals_b[@]}"; do ip addr add "$p/24" dev tB noprefixroute; done

# --- Routing -------------------------------------------------------------------------------
# Initiator and target share one kernel, and both ib_iser and ib_isert open their RDMA CM ids
# in the initial network namespace, so neither end can live in another namespace (an iSER
# portal bound in a netns would not find its address). With both ends in one namespace the
# "local" routing table would short-circuit every packet to a target address through lo, and
# the RDMA traffic would never cross vA/vB. So:
#  - the local table is consulted AFTER our rules (moved from preference 0 to 1000);
#  - a lookup bound to a target veth end (oif tA/tB: soft-RoCE sending from the target, and
#    the RDMA CM checking that an incoming connection request fits the device it came in on)
#    uses tables 230/231, where only that veth end's subnet route lives. Without this the CM
#    finds the initiator's address local, on another device, and rejects every iSER login
#    ("RDMA CM: REJECTED: consumer defined");
#  - other traffic generated on this machine (iif lo) from a target address (TCP portals)
#    leaves by the target's veth end too;
#  - the rest of the locally generated traffic to a lab subnet uses the main table, where only
#    the host port's own prefix route lives (created when vA/vB get their address; the target
#    addresses are noprefixroute), and is unreachable while the host port has no address;
#  - packets arriving on a veth match none of these (no oif, iif is not lo): the local table
#    delivers them;
#  - accept_local: each side sees the other's source address as one of its own.
ip route add 192.168.130.0/24 dev tA table 230
ip route add 192.168.131.0/24 dev tB table 231
ip rule add pref 100 oif tA lookup 230
ip rule add pref 100 oif tB lookup 231
for p in "${portals_a[@]}"; do ip rule add pref 110 from "$p" iif lo lookup 230; done
for p in "${portals_b[@]}"; do ip rule add pref 110 from "$p" iif lo lookup 231; done
ip rule add pref 200 to 192.168.130.0/24 iif lo lookup main
ip rule add pref 200 to 192.168.131.0/24 iif lo lookup main
ip rule add pref 201 to 192.168.130.0/24 iif lo unreachable
ip rule add pref 201 to 192.168.131.0/24 iif lo unreachable
ip rule add pref 1000 lookup local
ip rule del pref 0 lookup local
sysctl -q -w net.ipv4.conf.all.rp_filter=0
for l in vA vB tA tB; do
	sysctl -q -w "net.ipv4.conf.$l.rp_filter=0" "net.ipv4.conf.$l.accept_local=1"
done
t_net=$(ts)

# --- Soft-RoCE -----------------------------------------------------------------------------
rdma link add rxe0 type rxe netdev vA
rdma link add rxe1 type rxe netdev vB
rdma link add rxetA type rxe netdev tA
rdma link add rxetB type rxe netdev tB
t_rxe=$(ts)

# --- LIO target ----------------------------------------------------------------------------
mkdir -p "$store"
cfg=/sys/kernel/config/target
tpg=$cfg/iscsi/$iqn/tpgt_1
for ((i = 0; i < luns; i++)); do
	img=$store/lun$i.img
	rm -f "$img"
	truncate -s "${lun_sizes[$i]}" "$img"
	if [ "$i" -eq 0 ] && [ "$data_lun" -eq 1 ]; then
		seed=$(mktemp -d)
		echo "precious data written by the lab before the wizard ran" >"$seed/precious.txt"
		mkfs.ext4 -q -F -L labdata -d "$seed" "$img"
		rm -rf "$seed"
	fi
	bs=$cfg/core/fileio_$i/lun$i
	mkdir -p "$bs"
	echo "fd_dev_name=$img,fd_dev_size=$(stat -c %s "$img")" >"$bs/control"
	# Must be set before the device is enabled; without it the LUN has no WWID at all.
	echo "${lun_serials[$i]}" >"$bs/wwn/vpd_unit_serial"
	echo 1 >"$bs/enable"
done
mkdir -p "$tpg"
for ((i = 0; i < luns; i++)); do
	mkdir -p "$tpg/lun/lun_$i"
	ln -s "$cfg/core/fileio_$i/lun$i" "$tpg/lun/lun_$i/lab_lun$i"
done
for p in "${portals_a[@]}" "${portals_b[@]}"; do
	mkdir "$tpg/np/$p:3260"
	echo 1 >"$tpg/np/$p:3260/iser"
done
echo 1 >"$tpg/attrib/generate_node_acls"
echo 1 >"$tpg/attrib/cache_dynamic_acls"
echo 0 >"$tpg/attrib/authentication"
echo 0 >"$tpg/attrib/demo_mode_write_protect"
# Software emulation is slow: the default 15 s login timeout has expired mid-login (30 is
# the most LIO accepts).
echo 30 >"$tpg/attrib/login_timeout"
echo 1 >"$tpg/enable"
t_lio=$(ts)

mkdir -p /run/lab
cat >/run/lab/target.env <<ENV
LAB_TARGET_IQN=$iqn
LAB_PORTALS_A="${portals_a[*]}"
LAB_PORTALS_B="${portals_b[*]}"
LAB_LUNS=$luns
LAB_DATA_LUN=$data_lun
LAB_LUN0_FILE=$store/lun0.img
ENV
for ((i = 0; i < luns; i++)); do
	printf 'LAB_LUN%d_WWID=%s\nLAB_LUN%d_SERIAL=%s\n' "$i" "${lun_wwids[$i]}" "$i" "${lun_serials[$i]}"
done >>/run/lab/target.env

d() { awk "BEGIN{printf \"%.2f\", $2 - $1}"; }
echo "target-setup.modules $(d "$t0" "$t_mod")"
echo "target-setup.network $(d "$t_mod" "$t_net")"
echo "target-setup.rxe $(d "$t_net" "$t_rxe")"
echo "target-setup.lio $(d "$t_rxe" "$t_lio")"
echo "target-setup.total $(d "$t0" "$t_lio")"
