#!/usr/bin/env bash
# lab-needs: wizard
# lab-copy: tests/lab/scenarios/detach.sh
# Undo (issue 14): after an attach and a detach, `undo` leaves every file under /etc (the
# iSCSI database /etc/iscsi with it) as it was before the first run, compared byte for byte
# with its mode, owner and link targets, and no session, map or unit of ours running.
# (`undo` while a volume is attached is refused with exit 3: detach.sh checks it.)
# - `undo --dry-run` prints the plan and changes nothing.
# - A second `undo` changes nothing.
# After detach.sh in the same boot ("detach+undo") it uses the fingerprint detach.sh took
# before its attach; alone, it runs detach.sh first (which takes that fingerprint).
# shellcheck source=../guest/lib.sh
. /lab/guest/lib.sh
set -euo pipefail
need_wizard

# The same fingerprint as detach.sh's: type, mode, owner, path, content hash or link target.
etc_fingerprint() {
	find /etc -xdev -printf '%y %m %u:%g %p\n' | sort -k4 | while read -r type mode owner path; do
		case $type in
		f) echo "$type $mode $owner $path $(sha256sum <"$path" | cut -c1-64)" ;;
		l) echo "$type $mode $owner $path -> $(readlink "$path")" ;;
		*) echo "$type $mode $owner $path" ;;
		esac
	done
}

if [ ! -f /run/lab/etc-before ]; then
	phase attach-and-detach
	bash /lab/repo/tests/lab/scenarios/detach.sh || fail "detach.sh (run first) failed"
	phase_end
fi

state=/var/lib/iser-wizard/state.json
[ "$(jq -r '[.facts.volumes[]?.wwid] | length' "$state")" = 0 ] || fail "a volume is still attached"

phase undo-dry-run
etc_fingerprint >"$LAB_RESULTS/etc-before-undo"
rc=0
"$LAB_WIZARD" undo --dry-run >"$LAB_RESULTS/undo-plan.txt" 2>&1 || rc=$?
phase_end
cat "$LAB_RESULTS/undo-plan.txt"
[ "$rc" -eq 0 ] || fail "undo --dry-run exited $rc"
etc_fingerprint | diff -u "$LAB_RESULTS/etc-before-undo" - || fail "undo --dry-run changed /etc"

phase undo
rc=0
"$LAB_WIZARD" undo >"$LAB_RESULTS/undo.out" 2>&1 || rc=$?
phase_end
cat "$LAB_RESULTS/undo.out"
[ "$rc" -eq 0 ] || fail "undo exited $rc"
etc_fingerprint >"$LAB_RESULTS/etc-after-undo"
if ! diff -u /run/lab/etc-before "$LAB_RESULTS/etc-after-undo" >"$LAB_RESULTS/etc-diff-after-undo"; then
	cat "$LAB_RESULTS/etc-diff-after-undo"
	fail "/etc after undo differs from before the first run (diff above)"
fi
echo "/etc: byte for byte as before the first run ($(grep -c . /run/lab/etc-before) entries)"
sessions=$(iscsiadm -m session 2>/dev/null || true)
[ -z "$sessions" ] || fail "sessions left after undo: $sessions"
maps=$(multipath -ll 2>/dev/null || true)
[ -z "$maps" ] || fail "multipath maps left after undo: $maps"
objects=/var/lib/iser-wizard/backups/OBJECTS.json
for unit in $(jq -r '.units_enabled[]?' "$objects" 2>/dev/null); do
	! systemctl is-active -q "$unit" || fail "$unit, enabled by the wizard, still runs after undo"
	echo "unit $unit: $(systemctl is-enabled "$unit" 2>&1 || true), $(systemctl is-active "$unit" 2>&1 || true)"
done

phase undo-again
rc=0
"$LAB_WIZARD" undo >"$LAB_RESULTS/undo-again.out" 2>&1 || rc=$?
phase_end
cat "$LAB_RESULTS/undo-again.out"
[ "$rc" -eq 0 ] || fail "a second undo exited $rc"
grep -q "nothing to do" "$LAB_RESULTS/undo-again.out" || fail "a second undo found something to do"
etc_fingerprint | diff -u "$LAB_RESULTS/etc-after-undo" - || fail "a second undo changed /etc"
save_wizard_state
phase_total undo.total
echo "undo: PASS"
