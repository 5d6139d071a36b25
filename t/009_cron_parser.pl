# The schedule parser on its own (src/cron.c has no PostgreSQL headers):
# its table-driven checks, built with the strictest warnings.
use strict;
use warnings FATAL => 'all';

use PostgreSQL::Test::Utils;
use Test::More;

my ($stdout, $stderr) = run_command([ 'make', '-s', '-C', 'fuzz', 'cron-check' ]);
like($stdout, qr/^(\d+) passed, 0 failed$/m, 'every parser and evaluator case passes');
my ($passed) = $stdout =~ /^(\d+) passed/m;
cmp_ok($passed // 0, '>=', 100, 'the table holds at least 100 cases');
unlike($stderr, qr/warning|error/i, 'cron.c compiles without warnings');
done_testing();
