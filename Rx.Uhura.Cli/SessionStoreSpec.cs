using Microsoft.Extensions.Logging;
using Npgsql;
using Rx.Uhura.PostgreSql;
using Rx.Uhura.Session;
using Rx.Uhura.Sqlite;

namespace Rx.Uhura.Cli;

/// <summary><c>--store memory | sqlite:PATH | postgres:CONNECTION_STRING</c> of <c>uhura serve</c>.</summary>
internal static class SessionStoreSpec
{
    public const string Memory = "memory";
    private const string SqlitePrefix = "sqlite:";
    private const string PostgresPrefix = "postgres:";

    public const string Description = "Where sessions are kept: memory (the default; lost when serve stops), sqlite:PATH (a file: sessions survive a restart) or postgres:CONNECTION_STRING (shared by several serve processes).";

    /// <summary>Checks the spec; throws <see cref="UsageException"/> when it is malformed. Nothing is opened.</summary>
    public static Func<ILoggerFactory, ISessionStore> Parse(string? spec)
    {
        if (spec is null || string.Equals(spec, Memory, StringComparison.Ordinal))
        {
            return _ => new InMemorySessionStore();
        }

        if (spec.StartsWith(SqlitePrefix, StringComparison.Ordinal))
        {
            var path = spec[SqlitePrefix.Length..];
            if (path.Length == 0)
            {
                throw new UsageException($"store '{spec}' needs a file: sqlite:PATH.");
            }

            var fullPath = Path.GetFullPath(path);
            return logging => new SqliteSessionStore(SqliteSessionStoreOptions.Default with { Path = fullPath, LoggerFactory = logging });
        }

        if (spec.StartsWith(PostgresPrefix, StringComparison.Ordinal))
        {
            var connectionString = spec[PostgresPrefix.Length..];
            try
            {
                _ = new NpgsqlConnectionStringBuilder(connectionString);
            }
            catch (ArgumentException ex)
            {
                throw new UsageException($"store 'postgres:...': bad connection string: {ex.Message}");
            }

            if (connectionString.Length == 0)
            {
                throw new UsageException("store 'postgres:' needs a connection string: postgres:CONNECTION_STRING.");
            }

            return logging => new PostgresSessionStore(PostgresSessionStoreOptions.Default with { ConnectionString = connectionString, LoggerFactory = logging });
        }

        throw new UsageException($"store '{spec}' is not supported (supported: {Memory}, sqlite:PATH, postgres:CONNECTION_STRING).");
    }

    /// <summary>Opens a durable store now, so that a bad file or database fails at startup (exit 1).</summary>
    public static async Task OpenAsync(ISessionStore store, CancellationToken cancellationToken)
    {
        try
        {
            switch (store)
            {
                case SqliteSessionStore sqlite:
                    await sqlite.EnsureCreatedAsync(cancellationToken).ConfigureAwait(false);
                    break;
                case PostgresSessionStore postgres:
                    await postgres.EnsureCreatedAsync(cancellationToken).ConfigureAwait(false);
                    break;
            }
        }
        catch (Exception ex) when (ex is Microsoft.Data.Sqlite.SqliteException or NpgsqlException or IOException or UnauthorizedAccessException or TimeoutException)
        {
            throw new CliFailureException($"cannot open the session store: {ex.Message}", ex);
        }
    }
}
