using System.Text.RegularExpressions;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;

namespace Rx.Uhura.PostgreSql;

/// <summary>Settings of a <see cref="PostgresBackplane"/>. Start from <see cref="Default"/> and use <c>with</c>; set <see cref="ConnectionString"/> or <see cref="DataSource"/>.</summary>
public sealed partial record PostgresBackplaneOptions
{
    /// <summary>The defaults: channel <c>uhura</c>, table <c>uhura_backplane</c>, the system clock, no logging. No database: set one.</summary>
    public static PostgresBackplaneOptions Default { get; } = new();

    /// <summary>The database, as a connection string; the backplane then owns a data source made from it. Ignored when <see cref="DataSource"/> is set.</summary>
    public string? ConnectionString { get; init; }

    /// <summary>The database, as a data source the caller owns (not disposed by the backplane). Takes precedence over <see cref="ConnectionString"/>.</summary>
    public NpgsqlDataSource? DataSource { get; init; }

    /// <summary>The NOTIFY channel the servers of one deployment share (letters, digits, <c>_</c>; at most 63). Default <c>uhura</c>.</summary>
    public string Channel { get; init; } = "uhura";

    /// <summary>
    /// The table holding messages too large for a notification (PostgreSQL's limit is 8000 bytes): the notification
    /// carries the row's id. Created if missing. Letters, digits, <c>_</c>; at most 63. Default <c>uhura_backplane</c>.
    /// </summary>
    public string Table { get; init; } = "uhura_backplane";

    /// <summary>How long a large message's row is kept for every server to read it; older rows are deleted by a periodic cleanup. Default 1 minute.</summary>
    public TimeSpan LargeMessageRetention { get; init; } = TimeSpan.FromMinutes(1);

    /// <summary>How often each backplane deletes the expired rows of large messages. Default 30 seconds.</summary>
    public TimeSpan CleanupInterval { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>After this long without a notification, the listening connection is checked with a query, so a dead link is noticed. Default 30 seconds.</summary>
    public TimeSpan KeepAliveInterval { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>The first delay before reconnecting the listening connection after a failed attempt; it doubles (with jitter) up to <see cref="MaxReconnectDelay"/>. The first reconnect after a lost link is immediate. Default 200 ms.</summary>
    public TimeSpan ReconnectDelay { get; init; } = TimeSpan.FromMilliseconds(200);

    /// <summary>The longest delay between reconnection attempts. Default 30 seconds.</summary>
    public TimeSpan MaxReconnectDelay { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>The clock of the reconnect backoff and the cleanup. Default <see cref="TimeProvider.System"/>.</summary>
    public TimeProvider TimeProvider { get; init; } = TimeProvider.System;

    /// <summary>Where the backplane logs (lost connections, reconnections, lost messages). Default: nowhere.</summary>
    public ILoggerFactory LoggerFactory { get; init; } = NullLoggerFactory.Instance;

    internal void Validate()
    {
        if (DataSource is null && string.IsNullOrEmpty(ConnectionString))
        {
            throw new ArgumentException("Set a ConnectionString or a DataSource.", nameof(ConnectionString));
        }

        ArgumentNullException.ThrowIfNull(TimeProvider);
        ArgumentNullException.ThrowIfNull(LoggerFactory);
        if (Channel is null || !Identifier().IsMatch(Channel))
        {
            throw new ArgumentException($"'{Channel}' is not a valid channel name (letters, digits, '_', at most 63).", nameof(Channel));
        }

        if (Table is null || !Identifier().IsMatch(Table))
        {
            throw new ArgumentException($"'{Table}' is not a valid table name (letters, digits, '_', at most 63).", nameof(Table));
        }

        foreach (var (value, name) in new[] { (LargeMessageRetention, nameof(LargeMessageRetention)), (CleanupInterval, nameof(CleanupInterval)), (KeepAliveInterval, nameof(KeepAliveInterval)), (ReconnectDelay, nameof(ReconnectDelay)), (MaxReconnectDelay, nameof(MaxReconnectDelay)) })
        {
            if (value <= TimeSpan.Zero)
            {
                throw new ArgumentOutOfRangeException(name, value, "Must be positive.");
            }
        }
    }

    [GeneratedRegex("^[A-Za-z_][A-Za-z0-9_]{0,62}$")]
    private static partial Regex Identifier();
}
