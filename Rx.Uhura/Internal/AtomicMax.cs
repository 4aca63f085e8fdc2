namespace Rx.Uhura.Internal;

/// <summary>Raises a shared counter to at least a value, never lowering it (a compare-exchange loop).</summary>
internal static class AtomicMax
{
    /// <summary>Sets <paramref name="target"/> to <paramref name="value"/> if that is higher; concurrent raises keep the highest.</summary>
    public static void Raise(ref long target, long value)
    {
        var seen = Volatile.Read(ref target);
        while (value > seen)
        {
            var was = Interlocked.CompareExchange(ref target, value, seen);
            if (was == seen)
            {
                return;
            }

            seen = was;
        }
    }
}
