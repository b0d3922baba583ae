#!/usr/bin/env bash
# Build (or reuse) a Debian root image the iSER lab boots under qemu: Debian 12 (bookworm,
# the default) or Debian 13 (trixie).
#
# Usage: tests/lab/build-image.sh [--suite bookworm|trixie] [--force]
#   --suite S   the Debian release (default ${ISER_LAB_SUITE:-bookworm})
#   --force     rebuild even when the cached image is current
#
# Output, in ${ISER_LAB_CACHE:-/var/cache/iser-wizard-lab}/SUITE/:
#   base.img      ext4 root file system image (raw, sparse, 3G), made with mkfs.ext4 -d
#   vmlinuz       the guest kernel, taken from the image's /boot
#   initrd.img    its initramfs (small: MODULES=list, virtio + ext4 only)
#   base.hash     hash of this script and the suite: the image is rebuilt when it changes
#   build-times   debootstrap/configure/mkfs seconds and the kernel version
#
# Nothing is mounted and no loop device is used: debootstrap fills a directory, mkfs.ext4 -d
# turns it into an image. Runs as root on Debian 12; installs its own host tools with apt-get.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
suite=${ISER_LAB_SUITE:-bookworm}
image_size=${ISER_LAB_IMAGE_SIZE:-3G}
force=0
while [ $# -gt 0 ]; do
	case $1 in
	--suite) suite=$2; shift 2 ;;
	--force) force=1; shift ;;
	-h | --help) sed -n '2,18p' "$0"; exit 0 ;;
	*) echo "build-image: unknown argument: $1" >&2; exit 2 ;;
	esac
done
case $suite in
bookworm | trixie) ;;
*) echo "build-image: suite $suite: the lab knows bookworm and trixie" >&2; exit 2 ;;
esac
cache=${ISER_LAB_CACHE:-/var/cache/iser-wizard-lab}/$suite

# Everything the guest needs, from Debian's own archive. The guest has no network: whatever a
# scenario (or the wizard) runs must be in this list. ifupdown is the network stack the wizard
# configures on Debian; jq lets scenarios check JSON outputs; sg3-utils, pciutils and ethtool are
# what an admin (and the wizard's probes) reach for on a storage host; expect plays the person at
# the terminal in the interactive scenario.
packages=(
	systemd systemd-sysv udev kmod iproute2 iputils-ping ifupdown procps util-linux
	linux-image-amd64 initramfs-tools
	open-iscsi rdma-core ibverbs-utils ibverbs-providers infiniband-diags
	multipath-tools kpartx dmsetup sg3-utils
	parted e2fsprogs xfsprogs
	jq pciutils ethtool expect
)
# Installed by apt-get in the chroot after debootstrap (debootstrap's own configuration order
# fails on polkitd, which NetworkManager needs): the checkers of the network files the wizard
# writes (scenario config-check: NetworkManager, with dbus, reads keyfiles only through its
# daemon; netplan), and an InfiniBand fabric without hardware (scenario subnet-manager:
# ibsim-utils, opensm); fio for `bench` and `tune`; ansible-core runs the repository's Ansible
# role against the guest itself; python3 and openssl serve the SANtricity REST test double over
# HTTPS (a self-signed certificate made at boot), backed by the guest's own LIO target.
extra_packages=(dbus network-manager netplan.io ibsim-utils opensm fio ansible-core python3 openssl)

log() { printf 'build-image: %s\n' "$*" >&2; }

if [ "$(id -u)" -ne 0 ]; then
	log "must run as root (debootstrap, chroot)"
	exit 2
fi

# The hash covers this script (which holds the package list and the guest's configuration)
# and the suite.
want_hash=$( (cat "$here/build-image.sh"; echo "suite=$suite") | sha256sum | cut -d' ' -f1)
if [ "$force" -eq 0 ] && [ -f "$cache/base.img" ] && [ -f "$cache/vmlinuz" ] &&
	[ -f "$cache/initrd.img" ] && [ "$(cat "$cache/base.hash" 2>/dev/null)" = "$want_hash" ]; then
	log "cached image is current: $cache/base.img"
	exit 0
fi

# Host tools. apt-get update first: a fresh CI machine may have empty lists.
need=()
command -v qemu-system-x86_64 >/dev/null || need+=(qemu-system-x86)
command -v debootstrap >/dev/null || need+=(debootstrap)
command -v debugfs >/dev/null || need+=(e2fsprogs)
[ -f /usr/share/keyrings/debian-archive-keyring.gpg ] || need+=(debian-archive-keyring)
if [ ${#need[@]} -gt 0 ]; then
	log "installing host tools: ${need[*]}"
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# The mirror the host's own apt uses (deb822 .sources or one-line .list), unless overridden:
# the first URI that serves bookworm (not -security). The same archive serves trixie.
host_mirror() {
	local f
	for f in /etc/apt/sources.list.d/*.sources; do
		[ -f "$f" ] || continue
		awk '/^URIs:/ { uri = $2 } /^Suites:/ { for (i = 2; i <= NF; i++) if ($i == "bookworm") print uri }' "$f"
	done
	for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
		[ -f "$f" ] || continue
		awk '$1 == "deb" && / bookworm / { for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) { print $i; break } }' "$f"
	done
}
mirror=${ISER_LAB_MIRROR:-$(host_mirror | grep -v -- '-security' | head -n1 || true)}
mirror=${mirror:-http://deb.debian.org/debian}
log "mirror: $mirror"

mkdir -p "$cache/debs"
work=$(mktemp -d "$cache/build.XXXXXX")
trap 'rm -rf "$work"' EXIT
root=$work/rootfs
t0=$(date +%s.%N)

include=$(IFS=,; echo "${packages[*]}")
log "debootstrap --variant=minbase $suite into $cache (this takes a couple of minutes)"
if ! debootstrap --variant=minbase --cache-dir="$cache/debs" --include="$include" \
	"$suite" "$root" "$mirror" >"$work/debootstrap.log" 2>&1; then
	tail -n 40 "$work/debootstrap.log" >&2
	log "debootstrap failed (full log above)"
	exit 1
fi
# Services are not started in the chroot.
printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
chmod 755 "$root/usr/sbin/policy-rc.d"
log "apt-get install ${extra_packages[*]}"
if ! { chroot "$root" apt-get update -q &&
	DEBIAN_FRONTEND=noninteractive chroot "$root" apt-get install -y -q --no-install-recommends \
		"${extra_packages[@]}"; } >"$work/apt.log" 2>&1; then
	tail -n 40 "$work/apt.log" >&2
	log "apt-get install in the image failed (log above)"
	exit 1
fi
rm -f "$root/usr/sbin/policy-rc.d"
t1=$(date +%s.%N)

# --- Guest configuration -------------------------------------------------------------------
echo lab >"$root/etc/hostname"
printf '127.0.0.1\tlocalhost\n127.0.1.1\tlab\n' >"$root/etc/hosts"
# Root is already mounted rw by the kernel (root=/dev/vda rw); pass 0 skips a boot-time fsck.
echo '/dev/vda / ext4 rw,errors=remount-ro 0 0' >"$root/etc/fstab"
# A fixed machine id: an empty one makes systemd treat every boot as a first boot.
echo 0123456789abcdef0123456789abcdef >"$root/etc/machine-id"
chroot "$root" passwd -d root >/dev/null
# getty on the serial console hangs up ttyS0 and kills a service writing to it.
ln -sf /dev/null "$root/etc/systemd/system/serial-getty@ttyS0.service"
# Timers and jobs that only cost boot time in a throw-away VM.
# rdma-load-modules@ loads NFS-over-RDMA and friends when the lab's rxe devices appear, which
# costs ~20 s of emulated CPU in the middle of a scenario; the lab's setup loads the modules a
# host with an HCA would have (ib_uverbs, rdma_ucm, ib_umad) itself.
for u in apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer e2scrub_reap.service \
	fstrim.timer man-db.timer dpkg-db-backup.timer getty@.service getty-static.service \
	rdma-load-modules@.service \
	NetworkManager.service NetworkManager-wait-online.service NetworkManager-dispatcher.service \
	wpa_supplicant.service opensm.service; do
	ln -sf /dev/null "$root/etc/systemd/system/$u"
done
# NetworkManager is there for the config-check scenario only (the wizard configures Debian
# through ifupdown): running at boot it would take the lab's veths for DHCP. The packaged
# opensm.service would start opensm on every port, the lab's RoCE ones included. Both masked;
# the scenarios that need them unmask them.
# Only the loopback at boot: the guest never talks to the outside; lab links are made by the
# lab's own setup, and the host ports (vA, vB) are left for the scenario (or the wizard).
printf 'auto lo\niface lo inet loopback\n\nsource /etc/network/interfaces.d/*\n' \
	>"$root/etc/network/interfaces"

# A small initramfs: the generic one carries most of the kernel's drivers and costs seconds
# of decompression under software emulation. The root disk is virtio, the root fs ext4.
cat >"$root/etc/initramfs-tools/conf.d/lab" <<'CONF'
MODULES=list
CONF
printf '%s\n' virtio_pci virtio_blk ext4 crc32c_generic >"$root/etc/initramfs-tools/modules"
kver=$(find "$root/lib/modules" -mindepth 1 -maxdepth 1 -printf '%f\n' | sort -V | tail -n1)
chroot "$root" update-initramfs -u -k "$kver" >"$work/initramfs.log" 2>&1 ||
	{ cat "$work/initramfs.log" >&2; exit 1; }

# Drop what the image does not need at run time.
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* "$root"/usr/share/doc/* \
	"$root"/usr/share/man/* "$root"/usr/share/locale/*

cp "$root/boot/vmlinuz-$kver" "$work/vmlinuz"
cp "$root/boot/initrd.img-$kver" "$work/initrd.img"
t2=$(date +%s.%N)

log "mkfs.ext4 -d rootfs ($image_size)"
mkfs.ext4 -q -F -L lab-root -d "$root" "$work/base.img" "$image_size"
t3=$(date +%s.%N)

mv "$work/base.img" "$work/vmlinuz" "$work/initrd.img" "$cache/"
echo "$want_hash" >"$cache/base.hash"
cat >"$cache/build-times" <<TIMES
debootstrap $(awk "BEGIN{print $t1 - $t0}")
configure $(awk "BEGIN{print $t2 - $t1}")
mkfs $(awk "BEGIN{print $t3 - $t2}")
kernel $kver
TIMES
log "done in $(awk "BEGIN{printf \"%.1f\", $t3 - $t0}") s: debootstrap $(awk "BEGIN{printf \"%.1f\", $t1 - $t0}") s, configure $(awk "BEGIN{printf \"%.1f\", $t2 - $t1}") s, mkfs $(awk "BEGIN{printf \"%.1f\", $t3 - $t2}") s; kernel $kver"
