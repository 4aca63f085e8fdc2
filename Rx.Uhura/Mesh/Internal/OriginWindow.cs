namespace Rx.Uhura.Mesh.Internal;

/// <summary>
/// The bus events of one origin already seen, for exactly-once delivery when the graph has cycles: every event up to
/// <see cref="_contiguous"/>, and a bounded set of the ones seen above it (events overtake each other on different
/// paths). When the set is full the window slides: events far behind the newest are taken as seen.
/// </summary>
internal sealed class OriginWindow(string incarnation, int capacity)
{
    private readonly HashSet<ulong> _above = [];
    private ulong _contiguous;

    public string Incarnation { get; } = incarnation;

    /// <summary>True the first time <paramref name="seq"/> is offered.</summary>
    public bool FirstTime(ulong seq)
    {
        if (seq <= _contiguous || !_above.Add(seq))
        {
            return false;
        }

        while (_above.Remove(_contiguous + 1))
        {
            _contiguous++;
        }

        if (_above.Count > capacity)
        {
            _contiguous = _above.Min() - 1;
            while (_above.Remove(_contiguous + 1))
            {
                _contiguous++;
            }
        }

        return true;
    }
}
