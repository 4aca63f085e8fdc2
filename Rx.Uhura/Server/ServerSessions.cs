using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;
using Rx.Uhura.Internal;
using Rx.Uhura.Session;

namespace Rx.Uhura.Server;

/// <summary>
/// What a server keeps per session beyond the stored keys, across that session's connections: which messages it
/// already delivered (so a client's resends are dropped), which connection is the live one (a resuming connection
/// supersedes a half-dead predecessor), and when a disconnected session expires.
/// </summary>
internal sealed class ServerSessions(ISessionStore store, TimeSpan? timeToLive, TimeProvider timeProvider, ILogger logger)
{
    private readonly ConcurrentDictionary<string, ServerSession> _sessions = new(StringComparer.Ordinal);
    private readonly Lock _gate = new();

    public int Count => _sessions.Count;

    /// <summary>
    /// Makes <paramref name="connection"/> the session's live connection; the previous one, if any, is dropped, and
    /// the task completes once it has fully shut down (its unacknowledged events handed to the session), so the new
    /// connection resumes the streams from their final state.
    /// </summary>
    public async ValueTask<ServerSession> AttachAsync(string sessionId, Connection connection)
    {
        Connection? previous;
        ServerSession session;
        lock (_gate)
        {
            session = _sessions.GetOrAdd(sessionId, static id => new ServerSession(id));
            session.Expiry?.Dispose();
            session.Expiry = null;
            previous = session.Active;
            session.Active = connection;
        }

        if (previous is not null && !ReferenceEquals(previous, connection))
        {
            logger.LogDebug("Session {SessionId}: connection {New} supersedes {Old}", sessionId, connection.Id, previous.Id);
            previous.Dispose(); // returns at once if it is already shutting down on another thread: wait for that
            await previous.ShutdownCompleted.ConfigureAwait(false);
        }

        return session;
    }

    /// <summary>The connection ended: if it was the live one, the session waits <c>timeToLive</c> for a resume, then expires.</summary>
    public void Detach(string sessionId, Connection connection)
    {
        lock (_gate)
        {
            if (!_sessions.TryGetValue(sessionId, out var session) || !ReferenceEquals(session.Active, connection))
            {
                return;
            }

            session.Active = null;
            if (timeToLive is { } ttl)
            {
                session.Expiry = timeProvider.CreateTimer(static state => ((ExpiryState)state!).Fire(), new ExpiryState(this, session), ttl, Timeout.InfiniteTimeSpan);
            }
        }
    }

    /// <summary>Forgets a session at once (invalidation).</summary>
    public void Remove(string sessionId)
    {
        lock (_gate)
        {
            if (_sessions.TryRemove(sessionId, out var session))
            {
                session.Expiry?.Dispose();
            }
        }
    }

    private void Expire(ServerSession session)
    {
        lock (_gate)
        {
            if (session.Active is not null || !_sessions.TryGetValue(session.Id, out var current) || !ReferenceEquals(current, session))
            {
                return;
            }

            _sessions.TryRemove(session.Id, out _);
            session.Expiry?.Dispose();
        }

        logger.LogDebug("Session {SessionId} expired", session.Id);
        foreach (var held in session.Native.Reset())
        {
            held.Fail(new ConnectionLostException(held.Name) { ConnectionId = null });
        }

        _ = DestroyAsync(session.Id);
    }

    private sealed class ExpiryState(ServerSessions owner, ServerSession session)
    {
        public void Fire() => owner.Expire(session);
    }

    private async Task DestroyAsync(string sessionId)
    {
        try
        {
            await store.DestroyAsync(sessionId).ConfigureAwait(false);
        }
        catch (Exception ex)
        {
            logger.LogError(ex, "Destroying expired session {SessionId} failed", sessionId);
        }
    }
}

/// <summary>One session's server-side state. Delivery decisions are taken under <see cref="Gate"/>.</summary>
internal sealed class ServerSession(string id)
{
    private const int RecentIdLimit = 4096;
    private readonly HashSet<string> _recent = new(StringComparer.Ordinal);
    private readonly Queue<string> _recentOrder = new();
    private string? _prefix;
    private long _lastSeq;

    public string Id { get; } = id;

    public Lock Gate { get; } = new();

    public Connection? Active { get; set; }

    /// <summary>The native protocol's streams of this session, which outlive its connections.</summary>
    public NativeStream Native { get; } = new();

    public ITimer? Expiry { get; set; }

    /// <summary>
    /// True the first time a message id is seen. Rx.Uhura ids (<c>rx…:SEQ</c>) arrive in rising order per sender, so a
    /// watermark suffices; other ids (Node's uuids) are remembered in a bounded window of the most recent ones.
    /// Call under <see cref="Gate"/>.
    /// </summary>
    public bool ShouldDeliver(string messageId)
    {
        if (MessageIds.TrySplit(messageId, out var prefix, out var seq))
        {
            if (_prefix is null || !prefix.SequenceEqual(_prefix))
            {
                _prefix = prefix.ToString(); // a new sender (a new client instance resuming the session)
                _lastSeq = seq;
                return true;
            }

            if (seq <= _lastSeq)
            {
                return false;
            }

            _lastSeq = seq;
            return true;
        }

        if (!_recent.Add(messageId))
        {
            return false;
        }

        _recentOrder.Enqueue(messageId);
        if (_recentOrder.Count > RecentIdLimit)
        {
            _recent.Remove(_recentOrder.Dequeue());
        }

        return true;
    }
}
