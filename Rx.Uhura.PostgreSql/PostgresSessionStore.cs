using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Newtonsoft.Json.Linq;
using Npgsql;
using NpgsqlTypes;
using Rx.Uhura.Internal;
using Rx.Uhura.Session;

namespace Rx.Uhura.PostgreSql;

/// <summary>
/// A session store in PostgreSQL, shared by several server processes: a client resumes its session (and, through
/// <see cref="ISessionStreamStore"/>, its native streams) on any server that uses the same tables. The tables
/// (<c>PREFIXsessions</c> with the session as <c>jsonb</c>, <c>PREFIXstreams</c> with the held payloads as
/// <c>bytea[]</c>) are created on first use, under an advisory lock so that processes starting together do not race.
/// A row lives <see cref="PostgresSessionStoreOptions.TimeToLive"/> after its last save: then reads no longer see it and
/// a periodic purge deletes it. Safe to call concurrently; each operation takes a pooled connection.
/// </summary>
/// <remarks>
/// <c>jsonb</c> cannot hold the character U+0000 in a string: saving a session with one fails (the server logs it).
/// </remarks>
public sealed class PostgresSessionStore : ISessionStore, ISessionStreamStore, IExpiringSessionStore, IAsyncDisposable
{
    private readonly NpgsqlDataSource _dataSource;
    private readonly bool _ownsDataSource;
    private readonly string _sessions;
    private readonly string _streams;
    private readonly long _timeToLiveMs;
    private readonly Lock _gate = new();
    private readonly PeriodicPurge _purge;
    private Task? _schema;
    private bool _disposed;

    /// <summary>Opens the store in the database of <paramref name="connectionString"/>, with the other settings at their defaults.</summary>
    public PostgresSessionStore(string connectionString)
        : this(PostgresSessionStoreOptions.Default with { ConnectionString = connectionString })
    {
    }

    /// <summary>Opens the store described by <paramref name="options"/>. Nothing is read or written before the first call.</summary>
    public PostgresSessionStore(PostgresSessionStoreOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        Options = options;
        _ownsDataSource = options.DataSource is null;
        _dataSource = options.DataSource ?? NpgsqlDataSource.Create(options.ConnectionString!);
        var qualifier = options.Schema is { } schema ? $"\"{schema}\"." : "";
        _sessions = $"{qualifier}\"{options.TablePrefix}sessions\"";
        _streams = $"{qualifier}\"{options.TablePrefix}streams\"";
        _timeToLiveMs = (long)options.TimeToLive.TotalMilliseconds;
        var logger = (ILogger?)options.LoggerFactory?.CreateLogger<PostgresSessionStore>() ?? NullLogger.Instance;
        _purge = new PeriodicPurge(PurgeAsync, options.PurgeInterval, options.TimeProvider, logger);
    }

    /// <summary>The settings this store was opened with.</summary>
    public PostgresSessionStoreOptions Options { get; }

    /// <inheritdoc/>
    public TimeSpan? TimeToLive => Options.TimeToLive;

    /// <inheritdoc/>
    public async ValueTask<IReadOnlyDictionary<string, JToken>?> GetAsync(string sessionId, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(sessionId);
        await ReadyAsync(cancellationToken).ConfigureAwait(false);
        var command = _dataSource.CreateCommand($"SELECT data::text FROM {_sessions} WHERE id = $1 AND expires_at > $2");
        await using (command.ConfigureAwait(false))
        {
            command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = sessionId });
            command.Parameters.Add(new NpgsqlParameter<long> { TypedValue = Now() });
            return await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false) is string json ? SessionJson.Read(json) : null;
        }
    }

    /// <inheritdoc/>
    public async ValueTask SetAsync(string sessionId, IReadOnlyDictionary<string, JToken> session, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(sessionId);
        ArgumentNullException.ThrowIfNull(session);
        var json = SessionJson.Write(session);
        await ReadyAsync(cancellationToken).ConfigureAwait(false);
        var command = _dataSource.CreateCommand(
            $"INSERT INTO {_sessions} (id, data, expires_at) VALUES ($1, $2, $3) ON CONFLICT (id) DO UPDATE SET data = EXCLUDED.data, expires_at = EXCLUDED.expires_at");
        await using (command.ConfigureAwait(false))
        {
            command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = sessionId });
            command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = json, NpgsqlDbType = NpgsqlDbType.Jsonb });
            command.Parameters.Add(new NpgsqlParameter<long> { TypedValue = ExpiresAt() });
            await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    /// <inheritdoc/>
    /// <remarks>Forgets the stored resume state too, in the same statement.</remarks>
    public async ValueTask DestroyAsync(string sessionId, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(sessionId);
        await ReadyAsync(cancellationToken).ConfigureAwait(false);
        var command = _dataSource.CreateCommand($"WITH streams AS (DELETE FROM {_streams} WHERE session_id = $1) DELETE FROM {_sessions} WHERE id = $1");
        await using (command.ConfigureAwait(false))
        {
            command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = sessionId });
            await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    /// <inheritdoc/>
    public async ValueTask SaveStreamAsync(string sessionId, SessionStreamState state, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(sessionId);
        ArgumentNullException.ThrowIfNull(state);
        ArgumentNullException.ThrowIfNull(state.Held);
        ArgumentNullException.ThrowIfNull(state.Writer);
        var seqs = new long[state.Held.Count];
        var payloads = new byte[state.Held.Count][];
        for (var i = 0; i < seqs.Length; i++)
        {
            seqs[i] = state.Held[i].Seq;
            payloads[i] = state.Held[i].Payload.ToArray();
        }

        await ReadyAsync(cancellationToken).ConfigureAwait(false);
        var command = _dataSource.CreateCommand(
            $"""
            INSERT INTO {_streams} (session_id, last_sent, last_received, writer, held_seqs, held_payloads, expires_at)
            VALUES ($1, $2, $3, $4, $5, $6, $7)
            ON CONFLICT (session_id) DO UPDATE SET last_sent = EXCLUDED.last_sent, last_received = EXCLUDED.last_received,
                writer = EXCLUDED.writer, held_seqs = EXCLUDED.held_seqs, held_payloads = EXCLUDED.held_payloads, expires_at = EXCLUDED.expires_at
            """);
        await using (command.ConfigureAwait(false))
        {
            command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = sessionId });
            command.Parameters.Add(new NpgsqlParameter<long> { TypedValue = state.LastSent });
            command.Parameters.Add(new NpgsqlParameter<long> { TypedValue = state.LastReceived });
            command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = state.Writer });
            command.Parameters.Add(new NpgsqlParameter<long[]> { TypedValue = seqs, NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Bigint });
            command.Parameters.Add(new NpgsqlParameter<byte[][]> { TypedValue = payloads, NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Bytea });
            command.Parameters.Add(new NpgsqlParameter<long> { TypedValue = ExpiresAt() });
            await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    /// <inheritdoc/>
    /// <remarks>One <c>DELETE … RETURNING</c> statement: of several servers taking the same state, exactly one gets it.</remarks>
    public async ValueTask<SessionStreamState?> TakeStreamAsync(string sessionId, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(sessionId);
        await ReadyAsync(cancellationToken).ConfigureAwait(false);
        var command = _dataSource.CreateCommand(
            $"DELETE FROM {_streams} WHERE session_id = $1 RETURNING last_sent, last_received, writer, held_seqs, held_payloads, expires_at");
        await using (command.ConfigureAwait(false))
        {
            command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = sessionId });
            var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            await using (reader.ConfigureAwait(false))
            {
                if (!await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
                {
                    return null;
                }

                var seqs = await reader.GetFieldValueAsync<long[]>(3, cancellationToken).ConfigureAwait(false);
                var payloads = await reader.GetFieldValueAsync<byte[][]>(4, cancellationToken).ConfigureAwait(false);
                if (seqs.Length != payloads.Length)
                {
                    throw new InvalidDataException($"The stored resume state of session {sessionId} is inconsistent.");
                }

                var held = new HeldEvent[seqs.Length];
                for (var i = 0; i < held.Length; i++)
                {
                    held[i] = new HeldEvent(seqs[i], payloads[i]);
                }

                var state = new SessionStreamState(reader.GetInt64(0), reader.GetInt64(1), held, reader.GetString(2));
                return reader.GetInt64(5) <= Now() ? null : state;
            }
        }
    }

    /// <summary>
    /// Connects and creates the tables now if they are missing (otherwise this happens on first use), so that a bad
    /// connection string or missing rights fail at startup rather than at the first session.
    /// </summary>
    public Task EnsureCreatedAsync(CancellationToken cancellationToken = default) => ReadyAsync(cancellationToken);

    /// <summary>Deletes the expired rows now (the timer does this every <see cref="PostgresSessionStoreOptions.PurgeInterval"/>).</summary>
    /// <returns>How many rows were deleted.</returns>
    public async Task<int> PurgeAsync(CancellationToken cancellationToken = default)
    {
        await ReadyAsync(cancellationToken).ConfigureAwait(false);
        var deleted = 0;
        foreach (var (table, key) in new[] { (_sessions, "id"), (_streams, "session_id") })
        {
            int batch;
            do
            {
                // SKIP LOCKED: servers purging together take different rows instead of waiting on each other.
                var command = _dataSource.CreateCommand(
                    $"DELETE FROM {table} WHERE {key} IN (SELECT {key} FROM {table} WHERE expires_at <= $1 LIMIT $2 FOR UPDATE SKIP LOCKED)");
                await using (command.ConfigureAwait(false))
                {
                    command.Parameters.Add(new NpgsqlParameter<long> { TypedValue = Now() });
                    command.Parameters.Add(new NpgsqlParameter<int> { TypedValue = Options.PurgeBatchSize });
                    batch = await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
                    deleted += batch;
                }
            }
            while (batch == Options.PurgeBatchSize);
        }

        return deleted;
    }

    /// <summary>Stops the purge timer, waits for a running purge and disposes the data source if the store built it. Idempotent.</summary>
    public async ValueTask DisposeAsync()
    {
        lock (_gate)
        {
            if (_disposed)
            {
                return;
            }

            _disposed = true;
            _purge.Stop(); // with _disposed: a purge failing on the disposed store is not logged
        }

        await _purge.DisposeAsync().ConfigureAwait(false); // waits for a running purge; never throws
        if (_ownsDataSource)
        {
            await _dataSource.DisposeAsync().ConfigureAwait(false);
        }
    }

    private Task ReadyAsync(CancellationToken cancellationToken)
    {
        Task schema;
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (_schema is null || _schema.IsFaulted || _schema.IsCanceled)
            {
                _schema = CreateSchemaAsync();
            }

            schema = _schema;
        }

        return schema.IsCompletedSuccessfully ? Task.CompletedTask : schema.WaitAsync(cancellationToken);
    }

    /// <summary>
    /// Idempotent, and safe when several processes start at once: <c>CREATE … IF NOT EXISTS</c> alone can fail on a
    /// concurrent creation (a unique violation in <c>pg_type</c>), so the statements run under a transaction-scoped
    /// advisory lock named after the tables.
    /// </summary>
    private async Task CreateSchemaAsync()
    {
        var connection = await _dataSource.OpenConnectionAsync().ConfigureAwait(false);
        await using (connection.ConfigureAwait(false))
        {
            var transaction = await connection.BeginTransactionAsync().ConfigureAwait(false);
            await using (transaction.ConfigureAwait(false))
            {
                var lockCommand = new NpgsqlCommand("SELECT pg_advisory_xact_lock($1)", connection, transaction);
                await using (lockCommand.ConfigureAwait(false))
                {
                    lockCommand.Parameters.Add(new NpgsqlParameter<long> { TypedValue = LockKey($"Rx.Uhura.PostgreSql {Options.Schema}.{Options.TablePrefix}") });
                    await lockCommand.ExecuteNonQueryAsync().ConfigureAwait(false);
                }

                var prefix = Options.TablePrefix;
                var createSchema = Options.Schema is { } schema ? $"CREATE SCHEMA IF NOT EXISTS \"{schema}\";" : "";
                var create = new NpgsqlCommand(
                    $"""
                    {createSchema}
                    CREATE TABLE IF NOT EXISTS {_sessions} (
                        id text PRIMARY KEY,
                        data jsonb NOT NULL,
                        expires_at bigint NOT NULL);
                    CREATE INDEX IF NOT EXISTS "{prefix}sessions_expires_at" ON {_sessions} (expires_at);
                    CREATE TABLE IF NOT EXISTS {_streams} (
                        session_id text PRIMARY KEY,
                        last_sent bigint NOT NULL,
                        last_received bigint NOT NULL,
                        writer text NOT NULL,
                        held_seqs bigint[] NOT NULL,
                        held_payloads bytea[] NOT NULL,
                        expires_at bigint NOT NULL);
                    CREATE INDEX IF NOT EXISTS "{prefix}streams_expires_at" ON {_streams} (expires_at);
                    """,
                    connection,
                    transaction);
                await using (create.ConfigureAwait(false))
                {
                    await create.ExecuteNonQueryAsync().ConfigureAwait(false);
                }

                await transaction.CommitAsync().ConfigureAwait(false);
            }
        }
    }

    /// <summary>A stable 64-bit key (FNV-1a) for the advisory lock: the same in every process, unlike <see cref="string.GetHashCode()"/>.</summary>
    private static long LockKey(string name)
    {
        var hash = 14695981039346656037UL;
        foreach (var c in name)
        {
            hash = (hash ^ c) * 1099511628211UL;
        }

        return unchecked((long)hash);
    }

    /// <summary>Unix milliseconds on the store's clock.</summary>
    private long Now() => Options.TimeProvider.GetUtcNow().ToUnixTimeMilliseconds();

    private long ExpiresAt()
    {
        var now = Now();
        return now > long.MaxValue - _timeToLiveMs ? long.MaxValue : now + _timeToLiveMs;
    }
}
