using System.Collections.Concurrent;
using Newtonsoft.Json.Linq;

namespace Rx.Uhura.Session;

/// <summary>
/// The default session store: a process-local dictionary. Sessions survive reconnects, and a new
/// <see cref="UhuraServer"/> given the same instance resumes them (with their native resume state), but they do not
/// survive the process and are not shared between processes; use a durable store for that.
/// </summary>
/// <remarks>
/// With a time to live, a session (and its resume state) is forgotten that long after it was last saved. The server
/// saves a session on every change and again when its client disconnects, so the time counts from the disconnection.
/// Expired entries are invisible at once and removed on later writes.
/// </remarks>
public sealed class InMemorySessionStore : ISessionStore, ISessionStreamStore, IExpiringSessionStore
{
    private readonly ConcurrentDictionary<string, Entry<IReadOnlyDictionary<string, JToken>>> _sessions = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, Entry<SessionStreamState>> _streams = new(StringComparer.Ordinal);
    private readonly TimeSpan? _timeToLive;
    private readonly TimeProvider _timeProvider;
    private long _nextSweep;

    /// <summary>A store that keeps sessions until they are destroyed (the server destroys them when its own session time to live ends).</summary>
    public InMemorySessionStore()
        : this(null)
    {
    }

    /// <summary>A store that forgets a session <paramref name="timeToLive"/> after it was last saved.</summary>
    /// <param name="timeToLive">How long a saved session lives; null = until destroyed.</param>
    /// <param name="timeProvider">The clock (default <see cref="TimeProvider.System"/>).</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="timeToLive"/> is not positive.</exception>
    public InMemorySessionStore(TimeSpan? timeToLive, TimeProvider? timeProvider = null)
    {
        if (timeToLive is { } ttl && ttl <= TimeSpan.Zero)
        {
            throw new ArgumentOutOfRangeException(nameof(timeToLive), ttl, "Must be positive.");
        }

        _timeToLive = timeToLive;
        _timeProvider = timeProvider ?? TimeProvider.System;
    }

    /// <inheritdoc/>
    public TimeSpan? TimeToLive => _timeToLive;

    /// <summary>The number of sessions held and not expired.</summary>
    public int Count
    {
        get
        {
            var now = Now;
            return _sessions.Count(pair => pair.Value.IsLive(now));
        }
    }

    private long Now => _timeProvider.GetTimestamp();

    /// <inheritdoc/>
    public ValueTask<IReadOnlyDictionary<string, JToken>?> GetAsync(string sessionId, CancellationToken cancellationToken = default)
        => ValueTask.FromResult(_sessions.TryGetValue(sessionId, out var entry) && entry.IsLive(Now) ? entry.Value : null);

    /// <inheritdoc/>
    public ValueTask SetAsync(string sessionId, IReadOnlyDictionary<string, JToken> session, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(session);
        _sessions[sessionId] = new(session, ExpiresAt());
        Sweep();
        return ValueTask.CompletedTask;
    }

    /// <inheritdoc/>
    public ValueTask DestroyAsync(string sessionId, CancellationToken cancellationToken = default)
    {
        _sessions.TryRemove(sessionId, out _);
        _streams.TryRemove(sessionId, out _);
        return ValueTask.CompletedTask;
    }

    /// <inheritdoc/>
    public ValueTask SaveStreamAsync(string sessionId, SessionStreamState state, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(state);
        _streams[sessionId] = new(state, ExpiresAt());
        Sweep();
        return ValueTask.CompletedTask;
    }

    /// <inheritdoc/>
    public ValueTask<SessionStreamState?> TakeStreamAsync(string sessionId, CancellationToken cancellationToken = default)
        => ValueTask.FromResult(_streams.TryRemove(sessionId, out var entry) && entry.IsLive(Now) ? entry.Value : null);

    private long ExpiresAt() => _timeToLive is { } ttl ? Now + (long)(ttl.TotalSeconds * _timeProvider.TimestampFrequency) : long.MaxValue;

    /// <summary>Removes expired entries, at most once per time to live, so memory follows the live sessions.</summary>
    private void Sweep()
    {
        if (_timeToLive is null)
        {
            return;
        }

        var now = Now;
        var next = Volatile.Read(ref _nextSweep);
        if (now < next || Interlocked.CompareExchange(ref _nextSweep, ExpiresAt(), next) != next)
        {
            return;
        }

        foreach (var pair in _sessions)
        {
            if (!pair.Value.IsLive(now))
            {
                _sessions.TryRemove(pair);
            }
        }

        foreach (var pair in _streams)
        {
            if (!pair.Value.IsLive(now))
            {
                _streams.TryRemove(pair);
            }
        }
    }

    private sealed record Entry<T>(T Value, long ExpiresAt)
    {
        public bool IsLive(long now) => now < ExpiresAt;
    }
}
