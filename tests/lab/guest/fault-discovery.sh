#!/usr/bin/env bash
# Fault injection (issue 14): LIO's answer to a SendTargets discovery through one portal never
# reaches the host, as the lab saw LIO drop one now and then. The discovery session logs in,
# its SendTargets request goes out and no Text Response comes back: iscsiadm must give up by
# itself (the limits of the wizard's discovery record) and destroy its discovery session, or
# be killed at the wizard's bound and leave that session (no target name) behind; the
# discovery record it leaves either way is the wizard's to delete.
#
#   fault-discovery.sh on ADDRESS    drop the Text Responses sent from the target ADDRESS
#   fault-discovery.sh hits ADDRESS  how many packets the filter dropped (a number)
#   fault-discovery.sh off ADDRESS   remove the filter
#
# How: a tc u32 filter on the egress of the target veth holding ADDRESS (soft-RoCE sends
# through it). It matches RoCEv2 (UDP 4791) packets from ADDRESS whose BTH opcode is an RC
# SEND_ONLY (0x04) and whose iSCSI opcode, after the 20-byte IP, 8-byte UDP, 12-byte BTH and
# 28-byte iSER headers (offset 68), is a Text Response (0x24). Logins (0x23), SCSI responses
# and RDMA WRITEs of data are not touched, and no normal session sends a Text Response.
set -euo pipefail

cmd=${1:?usage: fault-discovery.sh on|hits|off ADDRESS}
addr=${2:?usage: fault-discovery.sh on|hits|off ADDRESS}
dev=$(ip -o -4 addr show to "$addr/32" | awk '{print $2; exit}')
[ -n "$dev" ] || { echo "fault-discovery: no interface holds $addr" >&2; exit 1; }

case $cmd in
on)
	tc qdisc replace dev "$dev" clsact
	tc filter add dev "$dev" egress protocol ip pref 49 u32 \
		match ip src "$addr/32" \
		match ip protocol 17 0xff \
		match ip dport 4791 0xffff \
		match u8 0x04 0xff at 28 \
		match u8 0x24 0xff at 68 \
		action drop
	echo "fault-discovery: Text Responses from $addr on $dev are dropped"
	;;
hits)
	# The action's counter: `Sent N bytes M pkt`.
	n=$(tc -s filter show dev "$dev" egress 2>/dev/null |
		awk '/Sent [0-9]+ bytes [0-9]+ pkt/ { for (i = 1; i <= NF; i++) if ($i == "pkt") { print $(i - 1); exit } }')
	echo "${n:-0}"
	;;
off)
	tc qdisc del dev "$dev" clsact 2>/dev/null || true
	echo "fault-discovery: filter on $dev removed"
	;;
*)
	echo "usage: fault-discovery.sh on|hits|off ADDRESS" >&2
	exit 2
	;;
esac
