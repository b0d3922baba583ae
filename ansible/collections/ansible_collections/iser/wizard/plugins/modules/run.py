#!/usr/bin/python
# -*- coding: utf-8 -*-
# Apache-2.0 (see the repository's Cargo.toml)
"""Run `iser-wizard run --answers FILE --json` and report what it did, for Ansible.

The wizard's JSON lines (docs/commands.md, `run --json`) decide everything here: `changed` is
the summary's (a check-mode dry run: whether it planned changes), a failure is the wizard's
own message, and each step's line is returned as it came.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: run
short_description: Run iser-wizard unattended and report changed/ok from its JSON summary
description:
  - Runs C(iser-wizard run --answers FILE --json) on the target host.
  - C(changed) is the wizard's own summary; a failed run fails the task with the wizard's message.
  - In check mode it runs C(--dry-run) (nothing is changed) and shows each step's plan as the diff.
options:
  answers:
    description: Path of the answers file on the target host.
    type: path
    required: true
  answers_content:
    description:
      - The answers document itself, given on standard input (C(--answers -)) instead of
        reading O(answers); for check mode, where the templated file is not written yet.
      - JSON text, or the document as data (Ansible turns a templated JSON text into a dict).
    type: raw
  root:
    description: Every file the wizard reads or writes lives below this directory (C(--root)).
    type: path
    default: /
  state_dir:
    description: The wizard's state directory.
    type: path
    default: /var/lib/iser-wizard
  executable:
    description: The wizard's binary.
    type: path
    default: /usr/bin/iser-wizard
  secrets:
    description:
      - Environment variables for the run, by name (e.g. the CHAP secret the answers'
        C(target.chap.password_env) names). Never logged, never written to a file.
    type: dict
    default: {}
  force_format:
    description: Pass C(--force-format).
    type: bool
    default: false
author: iser-wizard maintainers
"""

EXAMPLES = r"""
- name: Attach the iSER volume
  iser.wizard.run:
    answers: /etc/iser-wizard/answers.json
    secrets:
      ISER_CHAP_SECRET: "{{ vault_chap_secret }}"
"""

RETURN = r"""
summary:
  description: The wizard's summary line (changed, changes, planned, exit, worksheet...).
  returned: when the wizard ran
  type: dict
steps:
  description: One object per step (step, status, changes, seconds; message, plan).
  returned: when the wizard ran
  type: list
  elements: dict
stderr:
  description: The wizard's human text (its plans, progress and messages).
  returned: when the wizard ran
  type: str
"""

import json
import os

from ansible.module_utils.basic import AnsibleModule


def parse(stdout):
    """The step lines and the summary line of the wizard's standard output."""
    steps, summary = [], None
    for line in stdout.splitlines():
        line = line.strip()
        if not line:
            continue
        try:
            obj = json.loads(line)
        except ValueError:
            continue
        if obj.get("type") == "step":
            steps.append(obj)
        elif obj.get("type") == "summary":
            summary = obj
    return steps, summary


def plans(steps):
    """The plans of the steps that would change something, as one text for the diff."""
    out = []
    for s in steps:
        if s.get("status") == "planned" and s.get("changes", 0) > 0 and s.get("step") != "verify":
            out.append("[%s] %d change(s)\n%s" % (s["step"], s["changes"], s.get("plan", "")))
    return "\n".join(out)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            answers=dict(type="path", required=True),
            answers_content=dict(type="raw", no_log=False),
            root=dict(type="path", default="/"),
            state_dir=dict(type="path", default="/var/lib/iser-wizard"),
            executable=dict(type="path", default="/usr/bin/iser-wizard"),
            secrets=dict(type="dict", default={}, no_log=True),
            force_format=dict(type="bool", default=False),
        ),
        supports_check_mode=True,
    )
    p = module.params
    if not os.path.exists(p["executable"]):
        if module.check_mode:
            # The package task before this one would install it: nothing to plan with yet.
            module.exit_json(changed=True, msg="%s is not installed yet" % p["executable"])
        module.fail_json(msg="%s is not installed" % p["executable"])
    content = p["answers_content"]
    if isinstance(content, (dict, list)):
        # A templated JSON text arrives as data: give the wizard JSON again.
        content = json.dumps(content)
    source = "-" if content is not None else p["answers"]
    cmd = [p["executable"], "run", "--answers", source, "--json"]
    cmd += ["--root", p["root"], "--state-dir", p["state_dir"]]
    if module.check_mode:
        cmd.append("--dry-run")
    if p["force_format"]:
        cmd.append("--force-format")
    env = dict((k, str(v)) for k, v in p["secrets"].items())
    for v in env.values():
        module.no_log_values.add(v)
    rc, stdout, stderr = module.run_command(
        cmd,
        data=content,
        binary_data=True,
        environ_update=env,
    )
    steps, summary = parse(stdout)
    result = dict(cmd=cmd, rc=rc, steps=steps, summary=summary, stderr=stderr)
    if summary is None:
        module.fail_json(
            msg="iser-wizard printed no summary line (exit %d): %s" % (rc, stderr.strip()[-2000:]),
            **result
        )
    if module.check_mode:
        result["changed"] = summary.get("planned", 0) > 0
        if module._diff and result["changed"]:
            result["diff"] = dict(prepared=plans(steps))
    else:
        result["changed"] = bool(summary.get("changed"))
    if rc != 0:
        module.fail_json(msg=summary.get("message") or stderr.strip()[-2000:], **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
