/*-------------------------------------------------------------------------
 *
 * bloat.c
 *	  Page reads for the bloat report: adr_bloat() and adr_bloat_report() in
 *	  modes "sample" and "exact" (bloat.sql holds the SQL around them and
 *	  mode "estimate").
 *
 * What is counted.  For a heap (table, materialized view, TOAST table):
 * per page, the bytes of dead tuples (HeapTupleSatisfiesVacuum against the
 * relation's oldest non-removable xid says DEAD or RECENTLY_DEAD: what
 * pgstattuple counts as dead too) and the free space
 * (PageGetHeapFreeSpace); line pointers marked LP_DEAD (pruned, waiting
 * for VACUUM) are counted apart, because they tell that VACUUM is due even
 * when pruning has already turned the dead tuples into free space.  For a
 * btree index: the meta page is skipped; a deleted or half-dead page is
 * wholly free; a leaf page gives its free space and the bytes of items
 * marked LP_DEAD; internal pages give nothing.  These are the same
 * quantities pgstattuple() reports, so that mode "exact" can be checked
 * against it.
 *
 * Bloat is dead + free space less what fillfactor reserves on purpose:
 * BLCKSZ * (100 - fillfactor) / 100 on every heap page and on every btree
 * leaf page.  Per page, y = dead + free - reserve; the relation's bloat is
 * the sum of y, at least 0.
 *
 * Mode "exact" reads every page.  Mode "sample" reads a simple random
 * sample of adr_ops.bloat_sample_pages pages (utils/sampling.h's
 * BlockSampler: block numbers come out in increasing order, so the reads
 * go forward through the file) and extrapolates.  For a heap the
 * visibility map splits the pages in two strata first: an all-visible page
 * holds no dead tuple, so it is not read and its free space comes from the
 * free space map (which VACUUM wrote when it set the bit; a page changes
 * only after its bit is cleared); the sample is drawn from the other
 * pages only.  That is what pgstattuple_approx does for the all-visible
 * pages, and it makes the sample both cheaper and more accurate: the
 * sampling error applies to the not-all-visible pages alone.  The error
 * bound (error_pct) is 1.96 standard errors of the extrapolated sum of y
 * (with the finite population correction; about a 95% bound), plus the
 * free space map's rounding (up to 16 bytes a page either way, as we
 * count the middle of each 32-byte step) for the all-visible pages.
 *
 * Locking rules: the relation is locked with ConditionalLockRelationOid in
 * AccessShareLock mode and, when that would wait (someone holds an
 * AccessExclusiveLock: VACUUM FULL, ALTER TABLE, a REINDEX), the row says
 * "lock not available" instead of hanging.  The lock is released when the
 * relation has been read, so that a report over many relations does not
 * fill the lock table.  Each page is pinned through a BAS_BULKREAD ring and
 * share-locked while it is read (hint bits may be set, as by any reader);
 * nothing else is written.
 *
 * Privileges: reading pages needs superuser or the privileges of
 * pg_stat_scan_tables, checked here (as pgstattuple's functions are granted
 * to that role).
 *
 * IDENTIFICATION
 *	  src/bloat.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/nbtree.h"
#include "access/relation.h"
#include "access/visibilitymap.h"
#include "access/xlog.h"
#include "catalog/pg_am_d.h"
#include "catalog/pg_authid_d.h"
#include "catalog/pg_class_d.h"
#include "catalog/pg_tablespace_d.h"
#include "commands/defrem.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "storage/bufmgr.h"
#include "storage/freespace.h"
#include "storage/lmgr.h"
#include "storage/procarray.h"
#include "storage/smgr.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/relmapper.h"
#include "utils/sampling.h"
#include "utils/syscache.h"

#include "adr_ops.h"
#include "bloat.h"
#include "compat.h"
#include "scheduler.h"

PG_FUNCTION_INFO_V1(adr_bloat_scan);
PG_FUNCTION_INFO_V1(adr_bloat_size);

#define BLOAT_SCAN_COLS		8

/* How many pages mode "sample" reads at most (adr_ops.bloat_sample_pages). */
int			adr_ops_bloat_sample_pages = 3000;
int			adr_ops_bloat_report_timeout = 60000;

/* Two-sided 95% quantile of the normal distribution. */
#define BL_Z95				1.96
/* Half the free space map's step (BLCKSZ / 256): its mean rounding error. */
#define BL_FSM_HALF_STEP	(BLCKSZ / 256 / 2)

/* What one page gave. */
typedef struct BlPage
{
	double		dead;			/* bytes of dead tuples (index: LP_DEAD items) */
	double		free;			/* free bytes */
	double		reserve;		/* bytes fillfactor reserves on this page */
	double		items;			/* line pointers in use (heap) */
	double		dead_items;		/* of which dead: dead tuples and LP_DEAD */
} BlPage;

/* Sums over the pages read (or known from the maps). */
typedef struct BlSums
{
	double		n;				/* pages */
	double		dead;
	double		free;
	double		y;				/* dead + free - reserve */
	double		y2;				/* sum of squares of y, for the variance */
	double		items;
	double		dead_items;
} BlSums;

/*
 * The hourly bloat snapshot, registered by adr_bloat_init(): estimate mode
 * only (statistics, no page read), so that it stays cheap.
 */
static const AdrTask bl_snapshot_task = {
	"bloat_snapshot", true, false, false, "5s", adr_task_no_options, NULL,
	"store the estimated bloat of the most bloated relations in bloat_history (adr_bloat_snapshot())",
	"1.1",
	"SELECT n, format('stored the bloat of %s relations', n) FROM adr_ops.adr_bloat_snapshot() n"
};

void
adr_bloat_init(void)
{
	DefineCustomIntVariable("adr_ops.bloat_sample_pages",
							"Sets how many pages the bloat report's sample mode reads from each relation.",
							"A relation with fewer pages (for a table: fewer pages not all-visible) "
							"is read whole.  The error bound shrinks with the square root of it.",
							&adr_ops_bloat_sample_pages,
							3000,
							100,
							INT_MAX / 2,
							PGC_USERSET,
							0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("adr_ops.bloat_report_timeout",
							"Sets how long the bloat report may read pages in sample or exact mode.",
							"Relations not reached by then are listed with the method "
							"\"skipped: adr_ops.bloat_report_timeout reached\" and no figures.  "
							"0 means no limit.",
							&adr_ops_bloat_report_timeout,
							60000,
							0,
							INT_MAX,
							PGC_USERSET,
							GUC_UNIT_MS,
							NULL, NULL, NULL);

	adr_task_register(&bl_snapshot_task);
}

static void
bl_add(BlSums *s, const BlPage *p)
{
	double		y = p->dead + p->free - p->reserve;

	s->n += 1;
	s->dead += p->dead;
	s->free += p->free;
	s->y += y;
	s->y2 += y * y;
	s->items += p->items;
	s->dead_items += p->dead_items;
}

/*
 * Read heap page blkno of rel into *p.  Tuples are judged against
 * oldest_xmin like VACUUM would.  The buffer is share-locked while read.
 */
static void
bl_heap_page(Relation rel, BlockNumber blkno, BufferAccessStrategy strategy,
			 TransactionId oldest_xmin, double reserve, BlPage *p)
{
	Buffer		buf;
	Page		page;
	OffsetNumber off;
	OffsetNumber maxoff;

	memset(p, 0, sizeof(BlPage));
	p->reserve = reserve;

	buf = ReadBufferExtended(rel, MAIN_FORKNUM, blkno, RBM_NORMAL, strategy);
	LockBuffer(buf, BUFFER_LOCK_SHARE);
	page = BufferGetPage(buf);

	/*
	 * NB: an all-zero page (left by an extension that did not finish) is
	 * wholly free and VACUUM will initialise it; pgstattuple counts it as
	 * 0 free bytes, pgstattuple_approx as free, like us.
	 */
	if (PageIsNew(page))
	{
		p->free = BLCKSZ - SizeOfPageHeaderData;
		UnlockReleaseBuffer(buf);
		return;
	}

	p->free = PageGetHeapFreeSpace(page);
	maxoff = PageGetMaxOffsetNumber(page);
	for (off = FirstOffsetNumber; off <= maxoff; off = OffsetNumberNext(off))
	{
		ItemId		itemid = PageGetItemId(page, off);
		HeapTupleData tuple;

		if (!ItemIdIsUsed(itemid))
			continue;
		p->items += 1;
		if (ItemIdIsRedirected(itemid))
			continue;
		if (ItemIdIsDead(itemid))
		{
			p->dead_items += 1;
			continue;
		}

		ItemPointerSet(&tuple.t_self, blkno, off);
		tuple.t_data = (HeapTupleHeader) PageGetItem(page, itemid);
		tuple.t_len = ItemIdGetLength(itemid);
		tuple.t_tableOid = RelationGetRelid(rel);

		switch (HeapTupleSatisfiesVacuum(&tuple, oldest_xmin, buf))
		{
			case HEAPTUPLE_DEAD:
			case HEAPTUPLE_RECENTLY_DEAD:
				p->dead += tuple.t_len;
				p->dead_items += 1;
				break;
			case HEAPTUPLE_LIVE:
			case HEAPTUPLE_INSERT_IN_PROGRESS:
			case HEAPTUPLE_DELETE_IN_PROGRESS:
				break;
		}
	}

	UnlockReleaseBuffer(buf);
}

/*
 * Read btree page blkno (not the meta page) of rel into *p.  reserve is
 * what fillfactor leaves free on a leaf page.
 */
static void
bl_btree_page(Relation rel, BlockNumber blkno, BufferAccessStrategy strategy,
			  double reserve, BlPage *p)
{
	Buffer		buf;
	Page		page;
	BTPageOpaque opaque;

	memset(p, 0, sizeof(BlPage));

	buf = ReadBufferExtended(rel, MAIN_FORKNUM, blkno, RBM_NORMAL, strategy);
	LockBuffer(buf, BUFFER_LOCK_SHARE);
	page = BufferGetPage(buf);

	if (PageIsNew(page))
	{
		/* Not yet used: free, like a deleted page. */
		p->free = BLCKSZ;
		UnlockReleaseBuffer(buf);
		return;
	}

	opaque = (BTPageOpaque) PageGetSpecialPointer(page);
	if (P_IGNORE(opaque))
	{
		/* Deleted or half-dead: the whole page will be reused. */
		p->free = BLCKSZ;
	}
	else if (P_ISLEAF(opaque))
	{
		OffsetNumber off;
		OffsetNumber maxoff = PageGetMaxOffsetNumber(page);

		p->reserve = reserve;
		p->free = PageGetFreeSpace(page);
		for (off = P_FIRSTDATAKEY(opaque); off <= maxoff; off = OffsetNumberNext(off))
		{
			ItemId		itemid = PageGetItemId(page, off);

			if (ItemIdIsDead(itemid))
				p->dead += ItemIdGetLength(itemid);
		}
	}
	/* An internal page counts as neither free nor dead. */

	UnlockReleaseBuffer(buf);
}

/*
 * Read the pages of rel (a heap, or a btree when is_btree) and fill
 * *known (pages whose figures need no extrapolation) and *sampled (a
 * sample of population pages, *population of them).  In exact mode every
 * page is read and counted in *known.
 */
static void
bl_scan(Relation rel, bool is_btree, bool exact, BlockNumber nblocks,
		BlSums *known, BlSums *sampled, double *population)
{
	BufferAccessStrategy strategy = GetAccessStrategy(BAS_BULKREAD);
	TransactionId oldest_xmin = InvalidTransactionId;
	double		reserve;
	BlockNumber first = is_btree ? BTREE_METAPAGE + 1 : 0;
	BlockNumber blkno;
	BlPage		p;

	memset(known, 0, sizeof(BlSums));
	memset(sampled, 0, sizeof(BlSums));
	*population = 0;

	if (is_btree)
		reserve = (double) BLCKSZ * (100 - BTGetFillFactor(rel)) / 100.0;
	else
	{
		reserve = (double) BLCKSZ * (100 - RelationGetFillFactor(rel, HEAP_DEFAULT_FILLFACTOR)) / 100.0;
		oldest_xmin = GetOldestNonRemovableTransactionId(rel);
	}

	if (exact)
	{
		for (blkno = first; blkno < nblocks; blkno++)
		{
			CHECK_FOR_INTERRUPTS();
			if (is_btree)
				bl_btree_page(rel, blkno, strategy, reserve, &p);
			else
				bl_heap_page(rel, blkno, strategy, oldest_xmin, reserve, &p);
			bl_add(known, &p);
		}
	}
	else if (is_btree)
	{
		BlockSamplerData bs;
		BlockNumber npages = nblocks > first ? nblocks - first : 0;

		*population = npages;
		if (npages > 0)
		{
			BlockSampler_Init(&bs, npages, adr_ops_bloat_sample_pages, adr_random_seed());
			while (BlockSampler_HasMore(&bs))
			{
				CHECK_FOR_INTERRUPTS();
				bl_btree_page(rel, first + BlockSampler_Next(&bs), strategy, reserve, &p);
				bl_add(sampled, &p);
			}
		}
	}
	else
	{
		Buffer		vmbuffer = InvalidBuffer;
		BlockNumber not_visible = 0;
		BlockNumber index = 0;
		BlockNumber next = InvalidBlockNumber;
		BlockSamplerData bs;
		double		visible_items = -1;

		/*
		 * The line pointers of an all-visible page (not read) are its live
		 * tuples: counted as the table's density at its last VACUUM or
		 * ANALYZE (reltuples / relpages), or, without those figures, as
		 * the sampled pages' density (below).  Without them the share of
		 * line pointers VACUUM would free (vacuum_pct) would be taken over
		 * the not-all-visible pages only, and overstated.
		 */
		if (rel->rd_rel->reltuples >= 0 && rel->rd_rel->relpages > 0)
			visible_items = Min(rel->rd_rel->reltuples / rel->rd_rel->relpages,
								(double) MaxHeapTuplesPerPage);

		/* First pass over the visibility map: the pages to sample from. */
		for (blkno = 0; blkno < nblocks; blkno++)
		{
			if ((blkno & 1023) == 0)
				CHECK_FOR_INTERRUPTS();
			if (!VM_ALL_VISIBLE(rel, blkno, &vmbuffer))
				not_visible++;
		}

		if (not_visible > 0)
		{
			BlockSampler_Init(&bs, not_visible, adr_ops_bloat_sample_pages, adr_random_seed());
			if (BlockSampler_HasMore(&bs))
				next = BlockSampler_Next(&bs);
		}

		/*
		 * Second pass: all-visible pages from the free space map, the
		 * sampled others read.  A bit may have changed since the first
		 * pass; the population is what this pass saw.
		 */
		for (blkno = 0; blkno < nblocks; blkno++)
		{
			CHECK_FOR_INTERRUPTS();
			if (VM_ALL_VISIBLE(rel, blkno, &vmbuffer))
			{
				memset(&p, 0, sizeof(BlPage));
				p.free = GetRecordedFreeSpace(rel, blkno) + BL_FSM_HALF_STEP;
				p.reserve = reserve;
				p.items = Max(visible_items, 0);
				bl_add(known, &p);
				continue;
			}
			if (index == next)
			{
				bl_heap_page(rel, blkno, strategy, oldest_xmin, reserve, &p);
				bl_add(sampled, &p);
				next = InvalidBlockNumber;
				if (not_visible > 0 && BlockSampler_HasMore(&bs))
					next = BlockSampler_Next(&bs);
			}
			index++;
		}
		*population = index;
		if (visible_items < 0 && sampled->n > 0)
			known->items = known->n * sampled->items / sampled->n;

		if (BufferIsValid(vmbuffer))
			ReleaseBuffer(vmbuffer);
	}

	FreeAccessStrategy(strategy);
}

/*
 * An unlogged relation on a hot standby (or during crash recovery) has only
 * its init fork: its main fork is created at the end of recovery, so
 * RelationGetNumberOfBlocks() would fail with "could not open file".
 */
static bool
bl_unlogged_in_recovery(Relation rel)
{
	return rel->rd_rel->relpersistence == RELPERSISTENCE_UNLOGGED &&
		RecoveryInProgress();
}

/*
 * The privilege check of modes "sample" and "exact".
 */
static void
bl_check_privileges(void)
{
	if (!superuser() && !has_privs_of_role(GetUserId(), ROLE_PG_STAT_SCAN_TABLES))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to read the pages of relations"),
				 errdetail("Bloat modes \"sample\" and \"exact\" read pages, which needs superuser or the privileges of role \"pg_stat_scan_tables\"."),
				 errhint("Use mode \"estimate\", or grant pg_stat_scan_tables (or pg_monitor) to the role.")));
}

/*
 * _bloat_scan(rel oid, exact bool, min_bytes bigint, OUT total_bytes
 * bigint, OUT bloat_bytes bigint, OUT bloat_pct float8, OUT dead_pct
 * float8, OUT free_pct float8, OUT method text, OUT error_pct float8, OUT
 * vacuum_pct float8): one relation's bloat from its pages.  A relation
 * that cannot be read gives NULL figures and the reason in method; one
 * smaller than min_bytes is not read ("below min_bytes").  vacuum_pct is
 * the share of a heap's line pointers that VACUUM would free (dead tuples
 * and LP_DEAD pointers); in sample mode the line pointers of the
 * all-visible pages, not read, are estimated (see bl_scan).
 *
 * The caller (adr_bloat) has checked the mode and that the relation
 * existed; it may have been dropped since.
 */
Datum
adr_bloat_scan(PG_FUNCTION_ARGS)
{
	Oid			relid = PG_GETARG_OID(0);
	bool		exact = PG_GETARG_BOOL(1);
	int64		min_bytes = PG_GETARG_INT64(2);
	TupleDesc	tupdesc;
	Datum		values[BLOAT_SCAN_COLS];
	bool		nulls[BLOAT_SCAN_COLS];
	const char *method = NULL;
	Relation	rel;
	char		relkind;
	BlockNumber nblocks;
	double		total;

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");

	bl_check_privileges();

	memset(nulls, true, sizeof(nulls));
	values[5] = (Datum) 0;

	if (!ConditionalLockRelationOid(relid, AccessShareLock))
	{
		values[5] = CStringGetTextDatum("lock not available");
		nulls[5] = false;
		PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
	}
	if (!SearchSysCacheExists1(RELOID, ObjectIdGetDatum(relid)))
	{
		UnlockRelationOid(relid, AccessShareLock);
		values[5] = CStringGetTextDatum("relation no longer exists");
		nulls[5] = false;
		PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
	}
	rel = relation_open(relid, NoLock);
	relkind = rel->rd_rel->relkind;

	if (RELATION_IS_OTHER_TEMP(rel))
		method = "temporary table of another session";
	else if (bl_unlogged_in_recovery(rel))
		method = "unlogged relation during recovery";
	else if (relkind == RELKIND_PARTITIONED_TABLE)
		method = "partitioned table: see its partitions";
	else if (relkind == RELKIND_PARTITIONED_INDEX)
		method = "partitioned index: see its partitions";
	else if (relkind == RELKIND_INDEX && rel->rd_rel->relam != BTREE_AM_OID)
		method = psprintf("unsupported: %s index", get_am_name(rel->rd_rel->relam));
	else if (relkind == RELKIND_INDEX &&
			 (!rel->rd_index->indisready || !rel->rd_index->indisvalid))
	{
		/*
		 * Being built by CREATE INDEX CONCURRENTLY, or left invalid by one
		 * that failed (a _ccnew leftover): the btree build writes its pages
		 * with smgrextend, outside shared buffers, so reading them through
		 * the buffer manager could cache a zero or torn image that the
		 * build then does not overwrite.  Not read, as the estimate does
		 * not estimate it.
		 */
		method = "invalid index";
	}
	else if ((relkind == RELKIND_RELATION || relkind == RELKIND_MATVIEW ||
			  relkind == RELKIND_TOASTVALUE) &&
			 rel->rd_rel->relam != HEAP_TABLE_AM_OID)
		method = psprintf("unsupported: table access method %s", get_am_name(rel->rd_rel->relam));
	else if (relkind != RELKIND_INDEX && relkind != RELKIND_RELATION &&
			 relkind != RELKIND_MATVIEW && relkind != RELKIND_TOASTVALUE)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("\"%s\" is not a table, materialized view, index or TOAST table",
						RelationGetRelationName(rel)),
				 errdetail("Only those have pages whose bloat can be measured.")));

	if (method != NULL)
	{
		relation_close(rel, AccessShareLock);
		values[5] = CStringGetTextDatum(method);
		nulls[5] = false;
		PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
	}

	nblocks = RelationGetNumberOfBlocks(rel);
	total = (double) nblocks * BLCKSZ;
	values[0] = Int64GetDatum((int64) nblocks * BLCKSZ);
	nulls[0] = false;

	if ((int64) nblocks * BLCKSZ < min_bytes)
		method = "below min_bytes";
	else if (nblocks == 0)
	{
		/* Nothing to read: no bloat. */
		int			i;

		for (i = 1; i <= 4; i++)
		{
			values[i] = i == 1 ? Int64GetDatum(0) : Float8GetDatum(0);
			nulls[i] = false;
		}
		values[6] = Float8GetDatum(0);
		nulls[6] = false;
		method = exact ? "exact" : "sample";
	}
	else
	{
		BlSums		known;
		BlSums		sampled;
		double		population;
		double		scale = 0;
		double		dead;
		double		free;
		double		y;
		double		err;
		double		items;
		double		dead_items;

		bl_scan(rel, relkind == RELKIND_INDEX, exact, nblocks, &known, &sampled, &population);

		if (sampled.n > 0)
			scale = population / sampled.n;
		dead = known.dead + scale * sampled.dead;
		free = known.free + scale * sampled.free;
		y = known.y + scale * sampled.y;
		items = known.items + scale * sampled.items;
		dead_items = known.dead_items + scale * sampled.dead_items;

		/*
		 * The error bound: 1.96 standard errors of population * mean(y),
		 * with the finite population correction, plus the free space map's
		 * rounding for the pages taken from it.
		 */
		err = 0;
		if (sampled.n > 1 && sampled.n < population)
		{
			double		var = (sampled.y2 - sampled.y * sampled.y / sampled.n) / (sampled.n - 1);

			if (var > 0)
				err = BL_Z95 * population * sqrt(var / sampled.n * (1 - sampled.n / population));
		}
		if (!exact && relkind != RELKIND_INDEX)
			err += known.n * BL_FSM_HALF_STEP;

		values[1] = Int64GetDatum((int64) Max(y, 0));
		nulls[1] = false;
		values[2] = Float8GetDatum(100.0 * Max(y, 0) / total);
		nulls[2] = false;
		values[3] = Float8GetDatum(100.0 * dead / total);
		nulls[3] = false;
		values[4] = Float8GetDatum(100.0 * free / total);
		nulls[4] = false;
		values[6] = Float8GetDatum(100.0 * err / total);
		nulls[6] = false;
		if (relkind != RELKIND_INDEX)
		{
			values[7] = Float8GetDatum(items > 0 ? 100.0 * dead_items / items : 0);
			nulls[7] = false;
		}
		method = exact ? "exact" : "sample";
	}

	relation_close(rel, AccessShareLock);

	values[5] = CStringGetTextDatum(method);
	nulls[5] = false;
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}

/*
 * _bloat_size(rel oid) returns bigint: the size of the relation's main
 * fork, or NULL when it is locked (AccessShareLock not available at once)
 * or gone.  pg_relation_size() would wait for the lock.  An unlogged
 * relation during recovery has no main fork: 0, as pg_relation_size()
 * says.
 *
 * The estimate report asks it for every relation it lists, so it does not
 * build the relation's relcache entry (its attributes, indexes, rules: most
 * of the time pg_relation_size() takes for a relation not yet cached): the
 * file is found from the pg_class row, as the relcache would
 * (RelationInitPhysicalAddr), and its blocks counted through smgr.  Other
 * sessions' temporary relations and our own (their backend) go through
 * the relcache.  We hold AccessShareLock while counting, so the file
 * cannot be swapped or dropped meanwhile.
 */
Datum
adr_bloat_size(PG_FUNCTION_ARGS)
{
	Oid			relid = PG_GETARG_OID(0);
	HeapTuple	tuple;
	Form_pg_class form;
	int64		size = -1;

	if (!ConditionalLockRelationOid(relid, AccessShareLock))
		PG_RETURN_NULL();
	tuple = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
	if (!HeapTupleIsValid(tuple))
	{
		UnlockRelationOid(relid, AccessShareLock);
		PG_RETURN_NULL();
	}
	form = (Form_pg_class) GETSTRUCT(tuple);

	if (!RELKIND_HAS_STORAGE(form->relkind) ||
		form->relkind == RELKIND_PARTITIONED_TABLE ||
		form->relkind == RELKIND_PARTITIONED_INDEX)
		size = -1;
	else if (form->relpersistence == RELPERSISTENCE_UNLOGGED && RecoveryInProgress())
		size = 0;
	else if (form->relpersistence == RELPERSISTENCE_TEMP)
	{
		Relation	rel = relation_open(relid, NoLock);

		size = (int64) RelationGetNumberOfBlocks(rel) * BLCKSZ;
		relation_close(rel, NoLock);
	}
	else
	{
		RelFileNode rnode;
		SMgrRelation srel;

		rnode.spcNode = OidIsValid(form->reltablespace) ? form->reltablespace : MyDatabaseTableSpace;
		rnode.dbNode = form->reltablespace == GLOBALTABLESPACE_OID ? InvalidOid : MyDatabaseId;
		rnode.relNode = OidIsValid(form->relfilenode) ? form->relfilenode
			: RelationMapOidToFilenode(relid, form->relisshared);
		srel = smgropen(rnode, InvalidBackendId);
		size = (int64) smgrnblocks(srel, MAIN_FORKNUM) * BLCKSZ;
		/* (an SMgrRelation the relcache does not own closes at end of transaction) */
	}
	ReleaseSysCache(tuple);
	UnlockRelationOid(relid, AccessShareLock);

	if (size < 0)
		PG_RETURN_NULL();
	PG_RETURN_INT64(size);
}
