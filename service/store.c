/* store.c - being written. */
typedef int nba_placeholder_store;
