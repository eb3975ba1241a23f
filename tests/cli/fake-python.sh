#!/bin/sh
# Stands in for the interpreter in `heapsnap run` tests: prints what it was
# given, then exits with the status named by the script argument "exit=N",
# or kills itself with "kill=SIG".
printf 'argv:'
for a in "$@"; do printf ' [%s]' "$a"; done
printf '\n'
case "$PYTHONPATH" in
  *) printf 'PYTHONPATH=%s\n' "$PYTHONPATH" ;;
esac
for a in "$@"; do
  case "$a" in
    exit=*) exit "${a#exit=}" ;;
    kill=*) kill -s "${a#kill=}" $$ ;;
  esac
done
exit 0
