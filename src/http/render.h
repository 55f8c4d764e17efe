/*
 * render.h -- the JSON shapes of the API: event, job, channel statistics.
 */
#ifndef HTTP_RENDER_H
#define HTTP_RENDER_H

#include "core/core.h"
#include "json/jsonw.h"

/* {"eventID","publishedAt","data","livesUntil","isLocked","state"
 *  [,"lockedUntil"][,"lockToken" when with_token and locked]} */
void render_event(jsonw_t *w, const event_t *e, int with_token);

/* The envelope of an event list, {"channelName","count","events":[ ... ]}:
 * open it for n events, render them, close it. */
void render_list_open(jsonw_t *w, const channel_t *ch, size_t n);
void render_list_close(jsonw_t *w);

/* {"channelName","count","events":[...]} for n events. */
void render_event_list(jsonw_t *w, const channel_t *ch, event_t *const *events, size_t n,
                       int with_token);

/* An event's path, "/<channel>/events/<id>" (the Location of a published
 * event), for a channel path segment of chan_len bytes as it was sent
 * (still percent-encoded). Writes RENDER_EVENT_PATH_LEN(chan_len) bytes,
 * no NUL, into out and returns that length. */
#define RENDER_EVENT_PATH_LEN(chan_len) ((chan_len) + sizeof("//events/") - 1 + ID_LEN)
size_t render_event_path(char *out, const char *chan, size_t chan_len, eid_t id);

/* {"jobID","cron","data","ttl","createdAt","nextRunAt"} */
void render_job(jsonw_t *w, const job_t *j);

/* {"channelName","ready","scheduled","locked","jobs","published","deleted","expired"} */
void render_stats(jsonw_t *w, const channel_t *ch);

#endif
