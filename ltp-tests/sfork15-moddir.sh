#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
# sfork15 started where LTP's tst_module_exists() finds sfork.ko (the start
# directory): the initramfs guest keeps the module in
# /lib/modules/$(uname -r)/extra, and has no $LTPROOT/testcases/bin.
cd "/lib/modules/$(uname -r)/extra" || exit 2
exec sfork15 "$@"
