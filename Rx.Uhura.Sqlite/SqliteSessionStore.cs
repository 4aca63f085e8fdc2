using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Newtonsoft.Json.Linq;
using Rx.Uhura.Internal;
using Rx.Uhura.Session;

namespace Rx.Uhura.Sqlite;

/// <summary>
/// A durable session store in an embedded SQLite file: sessions and their native resume state survive a server
/// restart, and several server processes on one machine may share the file. The tables are created on first use
/// (<c>PREFIXsessions</c>, <c>PREFIXstreams</c>), the file is put in WAL mode, and a row lives
/// <see cref="SqliteSessionStoreOptions.TimeToLive"/> after its last save: then reads no longer see it and a periodic
/// purge deletes it. Safe to call concurrently; each operation takes a pooled connection of its own.
/// </summary>
public sealed class SqliteSessionStore : ISessionStore, ISessionStreamStore, IExpiringSessionStore, IAsyncDisposable
{
    private readonly string _connectionString;
    private readonly string _sessions;
    private readonly string _streams;
    private readonly long _timeToLiveMs;
    private readonly int _busyTimeoutMs;
    private readonly Lock _gate = new();
    private readonly PeriodicPurge _purge;
    private Task? _schema;
    private bool _disposed;

    /// <summary>Opens (or creates) the store in the file at <paramref name="path"/>, with the other settings at their defaults.</summary>
    public SqliteSessionStore(string path)
        : this(SqliteSessionStoreOptions.Default with { Path = path })
    {
    }

    /// <summary>Opens (or creates) the store described by <paramref name="options"/>. Nothing is read or written before the first call.</summary>
    public SqliteSessionStore(SqliteSessionStoreOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        Options = options;
        var builder = options.ConnectionString is { } connectionString
            ? new SqliteConnectionStringBuilder(connectionString)
            : new SqliteConnectionStringBuilder { DataSource = options.Path, Mode = SqliteOpenMode.ReadWriteCreate, Pooling = true };
        builder.DefaultTimeout = (int)Math.Clamp(Math.Ceiling(options.BusyTimeout.TotalSeconds), 1, int.MaxValue);
        _connectionString = builder.ConnectionString;
        _sessions = $"\"{options.TablePrefix}sessions\"";
        _streams = $"\"{options.TablePrefix}streams\"";
        _timeToLiveMs = (long)options.TimeToLive.TotalMilliseconds;
        _busyTimeoutMs = (int)Math.Min(options.BusyTimeout.TotalMilliseconds, int.MaxValue);
        var logger = (ILogger?)options.LoggerFactory?.CreateLogger<SqliteSessionStore>() ?? NullLogger.Instance;
        _purge = new PeriodicPurge(PurgeAsync, options.PurgeInterval, options.TimeProvider, logger);
    }

    /// <summary>The settings this store was opened with.</summary>
    public SqliteSessionStoreOptions Options { get; }

    /// <inheritdoc/>
    public TimeSpan? TimeToLive => Options.TimeToLive;

    /// <inheritdoc/>
    public async ValueTask<IReadOnlyDictionary<string, JToken>?> GetAsync(string sessionId, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(sessionId);
        var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
        await using (connection.ConfigureAwait(false))
        {
            using var command = Command(connection, $"SELECT data FROM {_sessions} WHERE id = $id AND expires_at > $now", ("$id", sessionId), ("$now", Now()));
            return await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false) is string json ? SessionJson.Read(json) : null;
        }
    }

    /// <inheritdoc/>
    public async ValueTask SetAsync(string sessionId, IReadOnlyDictionary<string, JToken> session, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(sessionId);
        ArgumentNullException.ThrowIfNull(session);
        var json = SessionJson.Write(session);
        var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
        await using (connection.ConfigureAwait(false))
        {
            using var command = Command(
                connection,
                $"INSERT INTO {_sessions} (id, data, expires_at) VALUES ($id, $data, $expires) ON CONFLICT (id) DO UPDATE SET data = excluded.data, expires_at = excluded.expires_at",
                ("$id", sessionId),
                ("$data", json),
                ("$expires", ExpiresAt()));
            await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    /// <inheritdoc/>
    /// <remarks>Forgets the stored resume state too.</remarks>
    public async ValueTask DestroyAsync(string sessionId, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(sessionId);
        var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
        await using (connection.ConfigureAwait(false))
        {
            var transaction = await connection.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
            await using (transaction.ConfigureAwait(false))
            {
                using var command = Command(connection, $"DELETE FROM {_sessions} WHERE id = $id; DELETE FROM {_streams} WHERE session_id = $id", ("$id", sessionId));
                command.Transaction = (SqliteTransaction)transaction;
                await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
                await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
            }
        }
    }

    /// <inheritdoc/>
    public async ValueTask SaveStreamAsync(string sessionId, SessionStreamState state, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(sessionId);
        ArgumentNullException.ThrowIfNull(state);
        ArgumentNullException.ThrowIfNull(state.Held);
        ArgumentNullException.ThrowIfNull(state.Writer);
        var held = HeldBlob.Write(state.Held);
        var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
        await using (connection.ConfigureAwait(false))
        {
            using var command = Command(
                connection,
                $"""
                INSERT INTO {_streams} (session_id, last_sent, last_received, writer, held, expires_at)
                VALUES ($id, $sent, $received, $writer, $held, $expires)
                ON CONFLICT (session_id) DO UPDATE SET last_sent = excluded.last_sent, last_received = excluded.last_received,
                    writer = excluded.writer, held = excluded.held, expires_at = excluded.expires_at
                """,
                ("$id", sessionId),
                ("$sent", state.LastSent),
                ("$received", state.LastReceived),
                ("$writer", state.Writer),
                ("$held", held),
                ("$expires", ExpiresAt()));
            await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    /// <inheritdoc/>
    /// <remarks>One <c>DELETE … RETURNING</c> statement: of several servers taking the same state, one gets it.</remarks>
    public async ValueTask<SessionStreamState?> TakeStreamAsync(string sessionId, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(sessionId);
        var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
        await using (connection.ConfigureAwait(false))
        {
            using var command = Command(
                connection,
                $"DELETE FROM {_streams} WHERE session_id = $id RETURNING last_sent, last_received, writer, held, expires_at",
                ("$id", sessionId));
            var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            await using (reader.ConfigureAwait(false))
            {
                if (!await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
                {
                    return null;
                }

                var state = new SessionStreamState(
                    reader.GetInt64(0),
                    reader.GetInt64(1),
                    HeldBlob.Read(reader.GetFieldValue<byte[]>(3)),
                    reader.GetString(2));
                var expired = reader.GetInt64(4) <= Now();
                while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
                {
                    // The statement completes (and the row is gone) once the reader is drained.
                }

                return expired ? null : state;
            }
        }
    }

    /// <summary>
    /// Opens the file and creates the tables now if they are missing (otherwise this happens on first use), so that a
    /// bad path fails at startup rather than at the first session.
    /// </summary>
    public async Task EnsureCreatedAsync(CancellationToken cancellationToken = default)
    {
        var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
        await connection.DisposeAsync().ConfigureAwait(false);
    }

    /// <summary>Deletes the expired rows now (the timer does this every <see cref="SqliteSessionStoreOptions.PurgeInterval"/>).</summary>
    /// <returns>How many rows were deleted.</returns>
    public async Task<int> PurgeAsync(CancellationToken cancellationToken = default)
    {
        var deleted = 0;
        var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
        await using (connection.ConfigureAwait(false))
        {
            foreach (var (table, key) in new[] { (_sessions, "id"), (_streams, "session_id") })
            {
                int batch;
                do
                {
                    using var command = Command(
                        connection,
                        $"DELETE FROM {table} WHERE {key} IN (SELECT {key} FROM {table} WHERE expires_at <= $now LIMIT $limit)",
                        ("$now", Now()),
                        ("$limit", Options.PurgeBatchSize));
                    batch = await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
                    deleted += batch;
                }
                while (batch == Options.PurgeBatchSize);
            }
        }

        return deleted;
    }

    /// <summary>Stops the purge timer, waits for a running purge and releases the file's pooled connections. Idempotent.</summary>
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
        using var connection = new SqliteConnection(_connectionString);
        SqliteConnection.ClearPool(connection);
    }

    private async Task<SqliteConnection> OpenAsync(CancellationToken cancellationToken)
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

        await schema.WaitAsync(cancellationToken).ConfigureAwait(false);
        return await ConnectAsync(cancellationToken).ConfigureAwait(false);
    }

    private async Task<SqliteConnection> ConnectAsync(CancellationToken cancellationToken)
    {
        var connection = new SqliteConnection(_connectionString);
        try
        {
            await connection.OpenAsync(cancellationToken).ConfigureAwait(false);
            using var pragma = Command(connection, $"PRAGMA busy_timeout = {_busyTimeoutMs}");
            await pragma.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
            return connection;
        }
        catch
        {
            await connection.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>Idempotent, and safe when several processes open the same file at once (the statements wait on the file's lock).</summary>
    private async Task CreateSchemaAsync()
    {
        var connection = await ConnectAsync(CancellationToken.None).ConfigureAwait(false);
        await using (connection.ConfigureAwait(false))
        {
            using (var wal = Command(connection, "PRAGMA journal_mode = WAL"))
            {
                await wal.ExecuteScalarAsync().ConfigureAwait(false);
            }

            var prefix = Options.TablePrefix;
            using var create = Command(
                connection,
                $"""
                CREATE TABLE IF NOT EXISTS {_sessions} (
                    id TEXT NOT NULL PRIMARY KEY,
                    data TEXT NOT NULL,
                    expires_at INTEGER NOT NULL);
                CREATE INDEX IF NOT EXISTS "{prefix}sessions_expires_at" ON {_sessions} (expires_at);
                CREATE TABLE IF NOT EXISTS {_streams} (
                    session_id TEXT NOT NULL PRIMARY KEY,
                    last_sent INTEGER NOT NULL,
                    last_received INTEGER NOT NULL,
                    writer TEXT NOT NULL,
                    held BLOB NOT NULL,
                    expires_at INTEGER NOT NULL);
                CREATE INDEX IF NOT EXISTS "{prefix}streams_expires_at" ON {_streams} (expires_at);
                """);
            await create.ExecuteNonQueryAsync().ConfigureAwait(false);
        }
    }

    private static SqliteCommand Command(SqliteConnection connection, string sql, params (string Name, object Value)[] parameters)
    {
        var command = connection.CreateCommand();
        command.CommandText = sql;
        foreach (var (name, value) in parameters)
        {
            command.Parameters.AddWithValue(name, value);
        }

        return command;
    }

    /// <summary>Unix milliseconds on the store's clock.</summary>
    private long Now() => Options.TimeProvider.GetUtcNow().ToUnixTimeMilliseconds();

    private long ExpiresAt()
    {
        var now = Now();
        return now > long.MaxValue - _timeToLiveMs ? long.MaxValue : now + _timeToLiveMs;
    }
}
