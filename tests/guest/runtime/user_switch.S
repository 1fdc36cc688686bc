/* user_enter(fn, arg, user_rsp, saved): saves the ring-0 callee-saved registers and stack in
 * saved, then iretq to fn(arg) at CPL3 with a return address of user_return_hlt.
 * user_resume(saved): back in ring 0 after that hlt faulted, returns from user_enter. */
#define SEL_DATA 0x10
#define SEL_USER_DATA 0x1b /* 0x18 | RPL 3 */
#define SEL_USER_CODE 0x23 /* 0x20 | RPL 3 */
#define RFLAGS_RESERVED 0x2 /* IF clear: the kit takes no interrupts */

	.text
	.globl user_enter
user_enter:
	mov %rbx, 0(%rcx)
	mov %rbp, 8(%rcx)
	mov %r12, 16(%rcx)
	mov %r13, 24(%rcx)
	mov %r14, 32(%rcx)
	mov %r15, 40(%rcx)
	mov %rsp, 48(%rcx)
	lea user_return_hlt(%rip), %rax
	sub $8, %rdx
	mov %rax, (%rdx) /* fn's return address, on the user stack */
	pushq $SEL_USER_DATA
	pushq %rdx
	pushq $RFLAGS_RESERVED
	pushq $SEL_USER_CODE
	pushq %rdi
	mov %rsi, %rdi
	iretq

	.globl user_return_hlt
user_return_hlt:
	hlt /* #GP at CPL3: the way back to ring 0 */

	.globl user_resume
user_resume:
	mov $SEL_DATA, %eax
	mov %eax, %ds
	mov %eax, %es
	mov %eax, %ss
	mov 0(%rdi), %rbx
	mov 8(%rdi), %rbp
	mov 16(%rdi), %r12
	mov 24(%rdi), %r13
	mov 32(%rdi), %r14
	mov 40(%rdi), %r15
	mov 48(%rdi), %rsp
	ret
