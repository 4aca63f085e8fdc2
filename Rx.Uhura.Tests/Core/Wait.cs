using System.Reactive.Linq;
using System.Reactive.Threading.Tasks;

namespace Rx.Uhura.Tests.Core;

/// <summary>Waiting on signals with a timeout, never sleeping.</summary>
internal static class Wait
{
    public static readonly TimeSpan Timeout = TimeSpan.FromSeconds(10);

    public static Task<T> First<T>(IObservable<T> source) => source.FirstAsync().ToTask().WaitAsync(Timeout);

    public static Task<T> First<T>(IObservable<T> source, Func<T, bool> predicate) => source.FirstAsync(predicate).ToTask().WaitAsync(Timeout);

    public static Task For(this Task task) => task.WaitAsync(Timeout);

    public static Task<T> For<T>(this Task<T> task) => task.WaitAsync(Timeout);
}
