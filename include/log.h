/* log.h - nbad's log: one line per event on stderr,
 *   2026-11-22T10:00:00.123Z nbad[1234] info: message
 * Safe to call from any thread (each line is written with one write call).
 * Logs never carry customer names or message texts: they are personal data. */
#ifndef NBA_LOG_H
#define NBA_LOG_H

typedef enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR } log_level;

/* Lines below `min` are dropped. Default LOG_INFO. */
void log_set_level(log_level min);

/* Sets the program name shown in each line (default "nbad"). The string must
 * outlive every later log call. */
void log_set_program(const char *name);

void log_msg(log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)
#define log_info(...)  log_msg(LOG_INFO, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_WARN, __VA_ARGS__)
#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)

#endif
