/* The work gate: an epoch and a count of jobs inside, under one mutex, so that a device reset
 * can wait for its running thread-pool jobs and cancel the ones that have not started yet. */
#include "kiln/util/work_gate.h"

void work_gate_init(struct work_gate *g)
{
    pthread_mutex_init(&g->lock, NULL);
    pthread_cond_init(&g->emptied, NULL);
    g->epoch = 0;
    g->inside = 0;
}

void work_gate_destroy(struct work_gate *g)
{
    pthread_cond_destroy(&g->emptied);
    pthread_mutex_destroy(&g->lock);
}

uint32_t work_gate_epoch(struct work_gate *g)
{
    pthread_mutex_lock(&g->lock);
    uint32_t epoch = g->epoch;
    pthread_mutex_unlock(&g->lock);
    return epoch;
}

bool work_gate_enter(struct work_gate *g, uint32_t epoch)
{
    pthread_mutex_lock(&g->lock);
    bool open = g->epoch == epoch;
    if (open)
        g->inside++;
    pthread_mutex_unlock(&g->lock);
    return open;
}

void work_gate_leave(struct work_gate *g)
{
    pthread_mutex_lock(&g->lock);
    g->inside--;
    if (g->inside == 0)
        pthread_cond_broadcast(&g->emptied);
    pthread_mutex_unlock(&g->lock);
}

void work_gate_close(struct work_gate *g)
{
    pthread_mutex_lock(&g->lock);
    g->epoch++;
    while (g->inside > 0)
        pthread_cond_wait(&g->emptied, &g->lock);
    pthread_mutex_unlock(&g->lock);
}
