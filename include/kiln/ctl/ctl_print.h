/* kiln ctl's human output: one printer per reply shape (docs/api.md). Each tolerates missing
 * fields, printing what is there. */
#ifndef KILN_CTL_PRINT_H
#define KILN_CTL_PRINT_H

#include <jansson.h>
#include <stdio.h>

/* GET /vm: "web1 (pid 1234): running, up 12.3 s, 2 vCPUs, 512 MiB". */
void ctl_print_status(FILE *out, const json_t *reply);
/* GET /vm/counters: an indented listing of each vCPU's exits and each device's counters. */
void ctl_print_counters(FILE *out, const json_t *reply);
/* 202 replies: their "message", or `fallback` if there is none. */
void ctl_print_message(FILE *out, const json_t *reply, const char *fallback);
/* PUT /vm/snapshot's reply: how much RAM went into the memory file, how long the VM paused. */
void ctl_print_snapshot(FILE *out, const json_t *reply);

/* GET /vm/balloon: the target, what the guest gave, the pages, what was ignored, statistics. */
void ctl_print_balloon(FILE *out, const json_t *reply);

/* PUT /vm/migrate's reply: rounds, bytes, total time and downtime. */
void ctl_print_migrate(FILE *out, const json_t *reply);

#endif
