/*
 * render.h -- the JSON shapes of the API: event, job, channel statistics,
 * written from the store's views (store.h).
 */
#ifndef HTTP_RENDER_H
#define HTTP_RENDER_H

#include "json/jsonw.h"
#include "store/store.h"

/* {"eventID","publishedAt","data","livesUntil","isLocked","state"
 *  [,"lockedUntil"][,"lockToken" when with_token and locked],"deliveries",
 *  "priority"[,"deadLetteredFrom"]}; data is a string, or the JSON text
 *  of any other value as sent. */
void render_event(jsonw_t *w, const store_event_t *e, int with_token);

/* The envelope of an event list, {"channelName","count","events":[ ... ]}:
 * open it for n events, render them, close it. */
void render_list_open(jsonw_t *w, const char *channel, size_t len, size_t n);
void render_list_close(jsonw_t *w);

/* Closes a list with "next": the cursor of the next page. */
void render_list_close_next(jsonw_t *w, const char *next, size_t len);

/* {"channelName","count","events":[...]} for n events. */
void render_event_list(jsonw_t *w, const char *channel, size_t len, const store_event_t *events, size_t n,
                       int with_token);

/* An event's path, "/<channel>/events/<id>" (the Location of a published
 * event), for a channel path segment of chan_len bytes as it was sent
 * (still percent-encoded). Writes RENDER_EVENT_PATH_LEN(chan_len) bytes,
 * no NUL, into out and returns that length. */
#define RENDER_EVENT_PATH_LEN(chan_len) ((chan_len) + sizeof("//events/") - 1 + ID_LEN)
size_t render_event_path(char *out, const char *chan, size_t chan_len, eid_t id);

/* {"jobID","cron","data","ttl","createdAt","nextRunAt"} */
void render_job(jsonw_t *w, const store_job_t *j);

/* {"channelName","ready","scheduled","locked","jobs","published","deleted","expired",
 *  "deadLettered","oldestReadyAge"}; the age in seconds at now. */
void render_stats(jsonw_t *w, const store_stats_t *st, ntime_t now);

/* {"maxDeliveries","deadLetterChannel","retryDelay"} */
void render_settings(jsonw_t *w, const store_settings_t *s);

#endif
