using Newtonsoft.Json.Linq;

namespace Rx.Uhura.Session;

/// <summary>
/// Where a server keeps sessions between connections, keyed by session id (the <c>get/set/destroy</c> store of Node
/// uhura). The server saves every change; a client that reconnects with a known id gets its session back.
/// Implementations must be safe to call concurrently for different ids.
/// </summary>
public interface ISessionStore
{
    /// <summary>Loads a session, or <see langword="null"/> when the id is unknown or expired.</summary>
    ValueTask<IReadOnlyDictionary<string, JToken>?> GetAsync(string sessionId, CancellationToken cancellationToken = default);

    /// <summary>Saves the whole session under its id (the values are not modified afterwards).</summary>
    ValueTask SetAsync(string sessionId, IReadOnlyDictionary<string, JToken> session, CancellationToken cancellationToken = default);

    /// <summary>Forgets a session.</summary>
    ValueTask DestroyAsync(string sessionId, CancellationToken cancellationToken = default);
}
