using Newtonsoft.Json.Linq;

namespace Rx.Uhura;

/// <summary>
/// Node uhura wire, client: the session's keys set while the handshake is under way. The server answers the
/// handshake's whole session (on a resume, with the stored keys overlaid with the client's, sent back in one
/// <c>_set</c>) before it reads anything the client wrote after the handshake, so a key the client set meanwhile would
/// come back with its older value and overwrite the newer one here, while the server then applies the newer one: the
/// two sides would disagree for good. Until <c>connect</c>, the server's changes of such keys are left out; the
/// client's own, applied after them on the server, settle both sides on the client's value. (Changes that cross after
/// <c>connect</c> are the wire's documented limit: each side keeps the other's.)
/// </summary>
public sealed partial class Connection
{
    private HashSet<string>? _setDuringHandshake; // under _gate; Node wire client, until 'connect'

    /// <summary>Under the session's gate (a local change being sent): remembers the key if the handshake is not done.</summary>
    private void NoteSetDuringHandshake(string key)
    {
        if (IsServer)
        {
            return;
        }

        lock (_gate)
        {
            if (!HandshakeDone)
            {
                (_setDuringHandshake ??= new HashSet<string>(StringComparer.Ordinal)).Add(key);
            }
        }
    }

    /// <summary>Under the session's gate (a remote change being applied): false for a key this client set during the handshake.</summary>
    private bool NotSetDuringHandshake(string key)
    {
        lock (_gate)
        {
            return _setDuringHandshake is null || !_setDuringHandshake.Contains(key);
        }
    }

    private JObject WithoutSetsDuringHandshake(JObject changes)
    {
        lock (_gate)
        {
            return _setDuringHandshake is { Count: > 0 } set ? Without(changes, set.Contains) : changes;
        }
    }

    /// <summary>The changes without the keys <paramref name="leftOut"/> names (a new object; the changes themselves when none is).</summary>
    private static JObject Without(JObject changes, Func<string, bool> leftOut)
    {
        var kept = new JObject();
        foreach (var property in changes.Properties())
        {
            if (!leftOut(property.Name))
            {
                kept[property.Name] = property.Value;
            }
        }

        return kept;
    }
}
