#!/usr/bin/env bash
# The Ansible collection without a VM: syntax of the playbook, and the module's check mode
# (a dry run) and failure path against a scratch --root, with the wizard built here.
#
# Usage: ansible/tests/run.sh WIZARD_BINARY
# Needs ansible-core (Debian's package). The lab scenario `ansible` runs the role for real.
set -euo pipefail
[ $# -eq 1 ] || { sed -n '2,6p' "$0" >&2; exit 2; }
wizard=$(readlink -f "$1")
here=$(cd "$(dirname "$0")/.." && pwd)
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
mkdir -p "$scratch/root/etc"
printf 'ID=debian\nVERSION_ID="12"\nVERSION_CODENAME=bookworm\n' >"$scratch/root/etc/os-release"
export ANSIBLE_CONFIG=$here/ansible.cfg ANSIBLE_COLLECTIONS_PATH=$here/collections
export ANSIBLE_NOCOLOR=1 ANSIBLE_LOCALHOST_WARNING=false ANSIBLE_INVENTORY_UNPARSED_WARNING=false
export ISER_ANSIBLE_SCRATCH=$scratch ISER_WIZARD_BIN=$wizard
ansible-playbook -i "$here/inventory.example.yml" "$here/attach.yml" --syntax-check
ansible-playbook "$here/tests/check-mode.yml"
