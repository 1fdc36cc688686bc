/* A gate between a device and the thread-pool jobs it started: a job passes it before touching
 * guest memory or the disk, and closing it (a device reset) waits for the jobs inside and turns
 * away every job started before. */
#ifndef KILN_UTIL_WORK_GATE_H
#define KILN_UTIL_WORK_GATE_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

struct work_gate {
    pthread_mutex_t lock;
    pthread_cond_t emptied;
    uint32_t epoch;  /* bumped by every close */
    unsigned inside; /* jobs between enter and leave */
};

void work_gate_init(struct work_gate *g);
void work_gate_destroy(struct work_gate *g);

/* What a job records when it is started: it may enter only while the gate is in this epoch. */
uint32_t work_gate_epoch(struct work_gate *g);

/* On the worker thread, before the job's work. False: the gate was closed since the job was
 * started, so the job must do nothing (and must not call work_gate_leave). */
bool work_gate_enter(struct work_gate *g, uint32_t epoch);
/* On the worker thread, once the job touches nothing shared any more. */
void work_gate_leave(struct work_gate *g);

/* Turns away every job started so far and waits until those already inside have left. Must
 * not be called from a job, nor while holding a lock that a job inside needs. */
void work_gate_close(struct work_gate *g);

#endif
