using System.Text;
using Microsoft.Extensions.Logging;
using Newtonsoft.Json;
using Newtonsoft.Json.Linq;
using Rx.Uhura.Protocol.Native;
using Rx.Uhura.Session;

namespace Rx.Uhura;

/// <summary>
/// Native protocol, session changes in the server's order (<see cref="NativeFeatures.SessionOrder"/>): the server counts
/// the client's <c>Set</c> frames it applied and sends that count in each of its own; the client leaves alone a key it
/// changed in a <c>Set</c> the server had not applied yet, since that change will win on the server too. Both sides then
/// end with the value the server applied last, whatever crossed on the wire. All under <c>_gate</c>, entered from the
/// session's gate (local changes) or inside it (<see cref="Session.UhuraSession"/>'s apply of remote ones).
/// </summary>
public sealed partial class Connection
{
    private bool _orderedSets;
    private long _setsApplied;   // server: the client's Set frames applied on this link
    private long _setsWritten;   // client: Set frames written on this link
    private Dictionary<string, long>? _unconfirmedSets; // client: key -> the last Set frame that changed it, not yet known applied

    /// <summary>Under <c>_gate</c>: writes one Set frame, counted (client) or carrying the count of the client's applied (server).</summary>
    private void WriteNativeSetLocked(JObject changes)
    {
        ulong count = 0;
        if (IsServer)
        {
            count = _orderedSets ? (ulong)_setsApplied : 0;
        }
        else
        {
            _setsWritten++;
            _unconfirmedSets ??= new Dictionary<string, long>(StringComparer.Ordinal);
            foreach (var property in changes.Properties())
            {
                _unconfirmedSets[property.Name] = _setsWritten;
            }
        }

        NativeFrameWriter.WriteSet(_outbox.Pending, count, Encoding.UTF8.GetBytes(changes.ToString(Formatting.None)));
    }

    /// <summary>A Set from the peer, applied in the session's order (see the type's remarks).</summary>
    private void ReceiveNativeSet(JObject changes, ulong appliedByServer)
    {
        if (IsServer)
        {
            Session.ApplyRemote(WithoutForeignSessionId(changes), CountApplied);
        }
        else
        {
            Session.ApplyRemote(changes, c => KeepSettled(c, (long)appliedByServer, welcome: false));
        }
    }

    /// <summary>
    /// Server: a client cannot rename its session (the server names it, and files the link under that name): a change of
    /// <see cref="UhuraSession.IdKey"/> to anything but the session's own id is left out of <paramref name="changes"/> and
    /// reported on the server's error stream; the link and the other keys go on.
    /// </summary>
    private JObject WithoutForeignSessionId(JObject changes)
    {
        if (changes.TryGetValue(UhuraSession.IdKey, out var value) && IsForeignSessionId(value))
        {
            changes.Remove(UhuraSession.IdKey);
        }

        return changes;
    }

    /// <summary>Server: true (and reported) when a client's change of the session id names another id than the session's.</summary>
    private bool IsForeignSessionId(JToken? value)
    {
        if (Session.Id is not { } id || (value is JValue { Type: JTokenType.String } text && string.Equals((string?)text, id, StringComparison.Ordinal)))
        {
            return false; // not named yet (the handshake decides), or the same id sent back
        }

        var error = new ProtocolException($"The client tried to change '{UhuraSession.IdKey}' of session {id}; the change was ignored.") { ConnectionId = Id };
        _logger.LogWarning("Connection {Id}: {Message}", Id, error.Message);
        _server?.ReportError(error);
        return true;
    }

    private JObject CountApplied(JObject changes)
    {
        lock (_gate)
        {
            _setsApplied++;
        }

        return changes;
    }

    /// <summary>
    /// Client: the peer's changes without the keys this side changed in a Set the server had not applied when it sent
    /// them (<paramref name="applied"/> of this link's). A Welcome's session is filtered even by a server that does not
    /// order changes: the keys set before it are sent right after it and win there.
    /// </summary>
    private JObject KeepSettled(JObject changes, long applied, bool welcome)
    {
        lock (_gate)
        {
            if (_unconfirmedSets is not { Count: > 0 } unconfirmed || !(_orderedSets || welcome))
            {
                return changes;
            }

            List<string>? settled = null;
            foreach (var (key, set) in unconfirmed)
            {
                if (set <= applied)
                {
                    (settled ??= []).Add(key);
                }
            }

            foreach (var key in settled ?? [])
            {
                unconfirmed.Remove(key);
            }

            return unconfirmed.Count == 0 ? changes : Without(changes, unconfirmed.ContainsKey);
        }
    }
}
