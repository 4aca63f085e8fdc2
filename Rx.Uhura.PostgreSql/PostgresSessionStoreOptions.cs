using Microsoft.Extensions.Logging;
using Npgsql;
using Rx.Uhura.Internal;
using static Rx.Uhura.Internal.StoreOptionsValidation;

namespace Rx.Uhura.PostgreSql;

/// <summary>
/// Settings of a <see cref="PostgresSessionStore"/>. Start from <see cref="Default"/> and use <c>with</c>; set
/// <see cref="ConnectionString"/> or <see cref="DataSource"/>.
/// </summary>
public sealed record PostgresSessionStoreOptions
{
    /// <summary>The defaults: no database yet, tables <c>uhura_*</c> on the search path, a 24 h time to live, the system clock.</summary>
    public static PostgresSessionStoreOptions Default { get; } = new();

    /// <summary>An Npgsql connection string; the store then owns a data source built from it. Set this or <see cref="DataSource"/>.</summary>
    public string? ConnectionString { get; init; }

    /// <summary>A data source to use instead of <see cref="ConnectionString"/> (for example one shared with the application); the store does not dispose it.</summary>
    public NpgsqlDataSource? DataSource { get; init; }

    /// <summary>
    /// The schema that holds the tables, created when missing; letters, digits and <c>_</c>. Null (the default) = the
    /// first schema of the connection's <c>search_path</c> (usually <c>public</c>).
    /// </summary>
    public string? Schema { get; init; }

    /// <summary>The prefix of the tables' names (<c>PREFIXsessions</c>, <c>PREFIXstreams</c>): letters, digits and <c>_</c>. Default <c>uhura_</c>.</summary>
    public string TablePrefix { get; init; } = "uhura_";

    /// <summary>
    /// How long a session (and its stored resume state) lives after its last save; then reads no longer see it and the
    /// purge deletes it. Default 24 hours.
    /// </summary>
    public TimeSpan TimeToLive { get; init; } = TimeSpan.FromHours(24);

    /// <summary>How often expired rows are deleted (at most <see cref="PurgeBatchSize"/> per table per statement). Default 5 minutes.</summary>
    public TimeSpan PurgeInterval { get; init; } = TimeSpan.FromMinutes(5);

    /// <summary>The most rows one purge statement deletes. Default 1,000.</summary>
    public int PurgeBatchSize { get; init; } = 1_000;

    /// <summary>The clock that stamps and checks expiry and drives the purge timer. Default <see cref="TimeProvider.System"/>.</summary>
    public TimeProvider TimeProvider { get; init; } = TimeProvider.System;

    /// <summary>Where failures of the background purge are logged. Null (the default) = not logged.</summary>
    public ILoggerFactory? LoggerFactory { get; init; }

    internal void Validate()
    {
        if (string.IsNullOrEmpty(ConnectionString) == (DataSource is null))
        {
            throw new ArgumentException("Set exactly one of ConnectionString and DataSource.", nameof(ConnectionString));
        }

        ArgumentNullException.ThrowIfNull(TimeProvider);
        Positive(TimeToLive, nameof(TimeToLive));
        Positive(PurgeInterval, nameof(PurgeInterval));
        Positive(PurgeBatchSize, nameof(PurgeBatchSize));
        StoreOptionsValidation.TablePrefix(TablePrefix, nameof(TablePrefix));

        if (Schema is not null && (Schema.Length == 0 || !StoreOptionsValidation.IsIdentifier(Schema)))
        {
            throw new ArgumentException("The schema may hold only letters, digits and '_', and not start with a digit (at most 40 characters).", nameof(Schema));
        }
    }
}
