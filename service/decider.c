/* decider.c - being written. */
typedef int nba_placeholder_decider;
