using System.Collections.Concurrent;
using Newtonsoft.Json.Linq;

namespace Rx.Uhura.Session;

/// <summary>
/// The default session store: a process-local dictionary. Sessions survive reconnects but not a restart, and are
/// not shared between server processes; use a durable store for that.
/// </summary>
public sealed class InMemorySessionStore : ISessionStore
{
    private readonly ConcurrentDictionary<string, IReadOnlyDictionary<string, JToken>> _sessions = new(StringComparer.Ordinal);

    /// <summary>The number of sessions held.</summary>
    public int Count => _sessions.Count;

    /// <inheritdoc/>
    public ValueTask<IReadOnlyDictionary<string, JToken>?> GetAsync(string sessionId, CancellationToken cancellationToken = default)
        => ValueTask.FromResult(_sessions.TryGetValue(sessionId, out var session) ? session : null);

    /// <inheritdoc/>
    public ValueTask SetAsync(string sessionId, IReadOnlyDictionary<string, JToken> session, CancellationToken cancellationToken = default)
    {
        _sessions[sessionId] = session;
        return ValueTask.CompletedTask;
    }

    /// <inheritdoc/>
    public ValueTask DestroyAsync(string sessionId, CancellationToken cancellationToken = default)
    {
        _sessions.TryRemove(sessionId, out _);
        return ValueTask.CompletedTask;
    }
}
