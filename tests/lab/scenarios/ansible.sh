#!/usr/bin/env bash
# lab-needs: wizard
# lab-copy: ansible
# Ansible: the repository's collection (ansible/) drives the attach, as on a fleet. ansible-core
# (Debian's package, in the image) runs the role iser.wizard.attach against the guest itself
# (connection local): it installs the package under test (run-scenario.sh --deb; the harness's
# own install is removed first, so the role's install is what is tested), writes the answers
# from inventory variables (those of answers/default.json), runs `iser-wizard run --json` and
# fetches the worksheet. Then the attach checks; then a second run reports changed=0 and a
# check-mode run (--check --diff, a dry run) changed=0 too (PLAY RECAP lines).
# shellcheck source=../guest/lib.sh
. /lab/guest/lib.sh
set -euo pipefail
need_wizard
debs=(/lab/pkg/*.deb)
deb=${debs[0]}
[ -f "$deb" ] || skip "no package under test in the guest (run-scenario.sh --deb PATH)"
command -v ansible-playbook >/dev/null || fail "no ansible-playbook in the image"
ansible-playbook --version | head -n1
mnt=$(jq -r .volume.mount_point "$LAB_ANSWERS")
wwid=$(jq -r .volume.wwid "$LAB_ANSWERS")
[ "$wwid" != auto ] || wwid=$LAB_LUN0_WWID

# The role installs the package itself.
dpkg -r iser-wizard >/dev/null 2>&1 || true
[ ! -e /usr/bin/iser-wizard ] || fail "iser-wizard still installed after dpkg -r"

work=/root/ansible-lab
mkdir -p "$work"
# The inventory: the lab answers as the role's variables (group and host ones alike).
jq --arg deb "$deb" --arg fetch "$work/worksheets" '{
  iser_hosts: {
    hosts: { lab: {
      ansible_connection: "local",
      ansible_python_interpreter: "/usr/bin/python3",
      iser_wizard_package: $deb,
      iser_wizard_fetch_dir: $fetch,
      iser_wizard_mapping_host_name: .host.mapping_host_name,
      iser_wizard_initiator_iqn: .host.initiator_iqn,
      iser_wizard_fabric: .fabric,
      iser_wizard_subnet_manager: .subnet_manager,
      iser_wizard_ports: .ports,
      iser_wizard_target_iqn: .target.iqn,
      iser_wizard_discovery: .target.discovery,
      iser_wizard_portals: .target.portals,
      iser_wizard_replacement_timeout: .iscsi.replacement_timeout,
      iser_wizard_rebuild_initramfs: .multipath.rebuild_initramfs,
      iser_wizard_volume: .volume,
      iser_wizard_verify_size: .verify.size
    } }
  }
}' "$LAB_ANSWERS" >"$work/inventory.json"
cp "$work/inventory.json" "$LAB_RESULTS/ansible-inventory.json"

export ANSIBLE_CONFIG=/lab/repo/ansible/ansible.cfg ANSIBLE_COLLECTIONS_PATH=/lab/repo/ansible/collections
export ANSIBLE_NOCOLOR=1 ANSIBLE_FORCE_COLOR=0 ANSIBLE_LOCAL_TEMP=$work/tmp ANSIBLE_HOME=$work/home
play() {
	local name=$1
	shift
	local rc=0
	ansible-playbook -i "$work/inventory.json" /lab/repo/ansible/attach.yml "$@" \
		>"$LAB_RESULTS/ansible-$name.log" 2>&1 || rc=$?
	cat "$LAB_RESULTS/ansible-$name.log"
	echo "ansible $name: exit $rc"
	grep -A2 '^PLAY RECAP' "$LAB_RESULTS/ansible-$name.log" | sed "s/^/recap($name): /"
	return "$rc"
}
# The lab host's recap line, e.g. "lab : ok=12 changed=5 unreachable=0 failed=0 ...".
recap() { grep -E '^lab +:' "$LAB_RESULTS/ansible-$1.log" | tail -n1; }
count() { recap "$1" | grep -oE "(^| )$2=[0-9]+" | cut -d= -f2; }

phase ansible-run-1
rc=0
play run-1 || rc=$?
phase_end
save_wizard_state
[ "$rc" -eq 0 ] || fail "the first ansible-playbook run exited $rc"
[ "$(count run-1 failed)" = 0 ] || fail "run 1: $(recap run-1)"
[ "$(count run-1 changed)" -gt 0 ] || fail "run 1 changed nothing on a fresh host: $(recap run-1)"
dpkg -s iser-wizard | grep -q '^Status: install ok installed' || fail "the role did not install the package"
[ -f /etc/iser-wizard/answers.json ] || fail "the role wrote no answers file"
[ "$(stat -c %a /etc/iser-wizard/answers.json)" = 600 ] || fail "the answers file is not 0600"
iser-wizard answers --template >/dev/null
check_sessions
check_map "$wwid" 4
src=$(check_mounted "$mnt")
echo "mounted: $src on $mnt"
for f in worksheet.md worksheet.pdf; do
	[ -s "$work/worksheets/lab/$f" ] || fail "the worksheet $f was not fetched"
done
grep -qF -- "$LAB_TARGET_IQN" "$work/worksheets/lab/worksheet.md" || fail "the fetched worksheet lacks the target IQN"
head -c 5 "$work/worksheets/lab/worksheet.pdf" | grep -q '%PDF-' || fail "the fetched PDF is not a PDF"
cp "$work/worksheets/lab/worksheet.md" "$LAB_RESULTS/ansible-worksheet.md"

phase ansible-run-2
rc=0
play run-2 || rc=$?
phase_end
[ "$rc" -eq 0 ] || fail "the second ansible-playbook run exited $rc"
[ "$(count run-2 changed)" = 0 ] || fail "the second run reported changes: $(recap run-2)"
[ "$(count run-2 failed)" = 0 ] || fail "run 2: $(recap run-2)"

phase ansible-check
rc=0
play check --check --diff || rc=$?
phase_end
[ "$rc" -eq 0 ] || fail "the check-mode run exited $rc"
[ "$(count check changed)" = 0 ] || fail "check mode on an attached host plans changes: $(recap check)"
check_sessions
check_mounted "$mnt" >/dev/null

echo "PLAY RECAP lines:"
for r in run-1 run-2 check; do echo "  $r: $(recap "$r")"; done
phase_total ansible.total
echo "ansible: PASS"
