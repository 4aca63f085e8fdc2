using Microsoft.Extensions.Logging;
using Rx.Uhura.Internal;
using static Rx.Uhura.Internal.StoreOptionsValidation;

namespace Rx.Uhura.Sqlite;

/// <summary>Settings of a <see cref="SqliteSessionStore"/>. Start from <see cref="Default"/> and use <c>with</c>; set <see cref="Path"/> or <see cref="ConnectionString"/>.</summary>
public sealed record SqliteSessionStoreOptions
{
    /// <summary>The defaults: no file yet (set <see cref="Path"/>), a 24 h time to live, the system clock.</summary>
    public static SqliteSessionStoreOptions Default { get; } = new();

    /// <summary>The database file, created when missing (with its folder left to the caller). Set this or <see cref="ConnectionString"/>.</summary>
    public string? Path { get; init; }

    /// <summary>A full Microsoft.Data.Sqlite connection string, instead of <see cref="Path"/>. Pooling should stay on.</summary>
    public string? ConnectionString { get; init; }

    /// <summary>
    /// How long a session (and its stored resume state) lives after its last save; then reads no longer see it and the
    /// purge deletes it. Default 24 hours.
    /// </summary>
    public TimeSpan TimeToLive { get; init; } = TimeSpan.FromHours(24);

    /// <summary>How often expired rows are deleted (at most <see cref="PurgeBatchSize"/> per table per statement). Default 5 minutes.</summary>
    public TimeSpan PurgeInterval { get; init; } = TimeSpan.FromMinutes(5);

    /// <summary>The most rows one purge statement deletes, so a purge never holds the write lock for long. Default 1,000.</summary>
    public int PurgeBatchSize { get; init; } = 1_000;

    /// <summary>
    /// How long an operation waits for a lock held by another connection or process sharing the file (SQLite's
    /// <c>busy_timeout</c>) before it fails. Default 30 seconds.
    /// </summary>
    public TimeSpan BusyTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>The prefix of the tables' names (<c>PREFIXsessions</c>, <c>PREFIXstreams</c>): letters, digits and <c>_</c>. Default <c>uhura_</c>.</summary>
    public string TablePrefix { get; init; } = "uhura_";

    /// <summary>The clock that stamps and checks expiry and drives the purge timer. Default <see cref="TimeProvider.System"/>.</summary>
    public TimeProvider TimeProvider { get; init; } = TimeProvider.System;

    /// <summary>Where failures of the background purge are logged. Null (the default) = not logged.</summary>
    public ILoggerFactory? LoggerFactory { get; init; }

    internal void Validate()
    {
        if (string.IsNullOrEmpty(Path) == string.IsNullOrEmpty(ConnectionString))
        {
            throw new ArgumentException("Set exactly one of Path and ConnectionString.", nameof(Path));
        }

        ArgumentNullException.ThrowIfNull(TimeProvider);
        Positive(TimeToLive, nameof(TimeToLive));
        Positive(PurgeInterval, nameof(PurgeInterval));
        Positive(BusyTimeout, nameof(BusyTimeout));
        Positive(PurgeBatchSize, nameof(PurgeBatchSize));
        StoreOptionsValidation.TablePrefix(TablePrefix, nameof(TablePrefix));
    }
}
